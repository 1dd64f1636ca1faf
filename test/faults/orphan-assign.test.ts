/**
 * An assignment whose frame never reached the worker (its distributor died between the assign
 * script and the send): the worker's heartbeat lists it as recorded-but-not-running, the worker
 * gives it back after two intervals, and it is requeued and runs. Nothing stays RUNNING forever.
 */
import { randomUUID } from 'node:crypto';
import { Keys, Scripts } from '@taskmesh/common/internal';
import { redis } from '../helpers';
import { Cluster } from './cluster';

describe('lost assign frame', () => {
  const cluster = new Cluster({ label: 'orphan', workers: 1 });
  const scripts = new Scripts(redis(), new Keys(cluster.prefix));
  beforeAll(() => cluster.start());
  afterAll(async () => {
    await cluster.stop();
    scripts.redis.disconnect();
  });

  test('a task assigned to a live worker that never got the frame is given back and ends END', async () => {
    // A QUEUED record made ready and claimed at once, straight in Redis, as a distributor that
    // died between the assign script and the send would leave it (no 'ready' notification, so
    // the live distributor does not race for it within that millisecond).
    const keys = new Keys(cluster.prefix);
    const orphan = `orphan-${randomUUID()}`;
    const now = Date.now();
    await scripts.redis
      .multi()
      .hset(keys.task(orphan), {
        id: orphan,
        name: 'sleep',
        config: '{"ms":50}',
        state: 'QUEUED',
        attempts: 0,
        max_attempts: 3,
        stalls: 0,
        max_stalls: 5,
        failures: 0,
        epoch: 0,
        assignment: '',
        worker: '',
        distributor: '',
        priority: 0,
        state_optional: '0',
        clean_end: '0',
        cancel: '0',
        completions: 0,
        created_at: now,
        updated_at: now,
      })
      .sadd(keys.tasks, orphan)
      .zadd(keys.ready('sleep'), 0, orphan)
      .exec();
    const res = await scripts.assign(orphan, 'sleep', 'w1', 'dead-distributor', randomUUID());
    expect(res.kind).toBe('assigned');
    const start = await cluster.record(orphan);
    expect(start.state).toBe('RUNNING');
    expect(start.distributor).toBe('dead-distributor');
    const end = await cluster.waitState(orphan, (x) => x.state === 'END', 'the orphan to run after being given back', 15000);
    expect(end.worker).toBe('w1');
    expect(end.completions).toBe(1);
    // The lost assignment did not count as a start, and the requeue moved the epoch on.
    expect(end.attempts).toBe(1);
    expect(end.epoch).toBeGreaterThan(start.epoch);
    await cluster.worker('w1').waitForLog('gave back a task assigned to this worker that never reached it');
  });
});
