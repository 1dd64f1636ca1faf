/**
 * Retries waiting out their backoff sit in `delayed` until the own-tasks pass promotes them. The
 * pass reads each one's name first; a read that fails (in a failover every command of a pipeline
 * on the dropped connection fails alike) must not count as a record that is gone, or the entry is
 * dropped and its task stays QUEUED in no queue for good. A Sentinel primary SIGKILL once left 36
 * tasks so. Here a real Redis error stands in for the failover's: the record key holds a string,
 * so HGET answers WRONGTYPE.
 */
import { Keys } from '@taskmesh/common/internal';
import { Cluster } from './faults/cluster';
import { redis, waitFor } from './helpers';

describe('promoting due retries', () => {
  let cluster: Cluster;
  const r = redis();
  beforeAll(async () => {
    cluster = await new Cluster({
      label: 'promote',
      workers: 1,
      distributor: { watch: { own_interval_ms: 200, all_interval_ms: 60000, stale_ms: 5000 } },
    }).start();
  });
  afterAll(async () => {
    await cluster.stop();
    r.disconnect();
  });

  test('an entry whose record cannot be read stays; one whose record is gone leaves', async () => {
    const keys = new Keys(cluster.prefix);
    await r.set(keys.task('unreadable'), 'not a hash');
    await r.zadd(keys.delayed, Date.now() - 1, 'unreadable', Date.now() - 1, 'gone');
    await waitFor('the pass to drop the entry of the missing record', async () => (await r.zscore(keys.delayed, 'gone')) === null);
    // Both were due in that pass. One more pass, known by a second missing record it drops:
    await r.zadd(keys.delayed, Date.now() - 1, 'gone-too');
    await waitFor('a later pass to drop the second one', async () => (await r.zscore(keys.delayed, 'gone-too')) === null);
    expect(await r.zscore(keys.delayed, 'unreadable')).not.toBeNull();
  });
});
