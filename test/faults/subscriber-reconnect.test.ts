/**
 * The distributor's pub/sub connection is dropped while Redis itself stays up (CLIENT KILL of
 * that one connection). A `ready` notification published while it is away is lost for good, so
 * once it has subscribed again the distributor must look at the ready queues by itself. The
 * all-tasks pass (the slow safety net) runs once a minute here and the distributor has read
 * every ready queue empty, so nothing else would start the task within the deadline.
 */
import { Cluster } from './cluster';
import { countLogs, redis, waitFor } from '../helpers';

const EMPTY = 'ready queues empty: intake may start new tasks at once';

describe('distributor subscriber dropped with Redis up', () => {
  let cluster: Cluster;
  const r = redis();
  beforeAll(async () => {
    cluster = await new Cluster({
      label: 'subkill',
      workers: 1,
      distributor: { watch: { own_interval_ms: 500, all_interval_ms: 60000, stale_ms: 5000 } },
      env: { TASKMESH_LOG_LEVEL: 'debug' },
    }).start();
  });
  afterAll(async () => {
    await cluster.stop();
    r.disconnect();
  });

  /** The id of the distributor's pub/sub connection (its name ends in -sub), or null. */
  async function subscriberId(): Promise<string | null> {
    const name = `taskmesh-distributor-d-${cluster.ports[0]}-sub`;
    const list = (await r.client('LIST', 'TYPE', 'pubsub')) as string;
    const line = list.split('\n').find((l) => l.includes(` name=${name} `));
    return line ? (/\bid=(\d+)/.exec(line)?.[1] ?? null) : null;
  }

  test('a notification lost while it reconnects: the task is started once it has subscribed again', async () => {
    const d = cluster.distributors[0]!;
    const id = await cluster.client.submit('fail', { message: 'first attempt fails' }, { max_attempts: 1 });
    await cluster.waitState(id, (rec) => rec.state === 'FAILED', 'FAILED');
    // Idle as a quiet mesh is: a dispatch run read every ready queue empty (at start-up), and
    // nothing since said a queue has work (the task was handed over by intake and failed for good).
    await waitFor('a dispatch run that read the ready queues empty', () => countLogs(d.output, EMPTY) > 0);

    const before = await waitFor('the subscriber connection', subscriberId);
    await r.client('KILL', 'ID', before);
    // The retry's `ready` is published while the subscriber is away (ioredis redials after 100 ms
    // or more); it reaches nobody.
    expect(await cluster.client.retry(id)).toBe('QUEUED');
    const after = await waitFor('the subscriber to connect again', async () => {
      const now = await subscriberId();
      return now && now !== before ? now : null;
    });
    expect(after).not.toBe(before);
    const rec = await cluster.waitState(id, (x) => x.state === 'FAILED' && x.attempts === 2, 'the retried attempt ran (and failed again)', 10000);
    expect(rec.attempts).toBe(2);
  });
});
