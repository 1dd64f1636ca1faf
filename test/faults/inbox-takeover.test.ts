/**
 * A takeover reaches a running function within one heartbeat through the worker's inbox, which
 * the requeue script writes: no distributor has to hear the worker, and the worker does not read
 * its tasks' records to find out.
 */
import { Keys, Scripts } from '@taskmesh/common/internal';
import { FAST, redis, findLogs } from '../helpers';
import { Cluster } from './cluster';

/** The cluster's health interval: the worker's heartbeat reads its inbox once per interval. */
const INTERVAL = FAST.health.interval_ms;

describe('takeover through the inbox', () => {
  const cluster = new Cluster({ label: 'inbox', workers: 1 });
  const scripts = new Scripts(redis(), new Keys(cluster.prefix));
  beforeAll(() => cluster.start());
  afterAll(async () => {
    await cluster.stop();
    scripts.redis.disconnect();
  });

  test('a task requeued by another distributor is aborted on its worker within one interval', async () => {
    const id = await cluster.client.submit('sleep', { ms: 30000 });
    const running = await cluster.waitState(id, (r) => r.state === 'RUNNING', 'RUNNING');
    await cluster.functionStarted(running.worker!, id);
    // Its distributor is gone, so nothing but Redis can tell the worker.
    const d = cluster.distributors[0]!;
    d.signal('SIGKILL');
    await d.exited;
    const w = cluster.worker('w1');
    await w.waitForLog('distributor connection closed');
    const fence = { epoch: running.epoch, assignment: (await scripts.redis.hget(scripts.keys.task(id), 'assignment'))! };
    // What another distributor does when it finds the worker down.
    const before = w.output.length;
    const requeuedAt = Date.now();
    expect(await scripts.requeue(id, 'sleep', 'w1', fence, 'down', { backoffMs: 100, backoffMaxMs: 1000 })).toBe('requeued');
    await w.waitForLog('aborting task', { task: id, reason: `task ${id} was taken over by a newer attempt (epoch moved on from ${running.epoch})` }, 5000);
    const seenAfter = Date.now() - requeuedAt;
    // One heartbeat interval, plus the log line's trip through a pipe on a busy machine.
    expect(seenAfter).toBeLessThan(INTERVAL + 800);
    await w.waitForLog('attempt was taken over; its result is discarded', { task: id }, 5000);
    expect(findLogs(w.output.slice(before), /task FAILED/).filter((l) => JSON.stringify(l).includes(id))).toEqual([]);
    // Nothing the old attempt could write lands: the record stays QUEUED for the next attempt.
    const r = await cluster.record(id);
    expect(r.state).toBe('QUEUED');
    expect(r.epoch).toBe(running.epoch + 1);
    expect(await scripts.redis.llen(scripts.keys.inbox('w1'))).toBe(0);
  });
});
