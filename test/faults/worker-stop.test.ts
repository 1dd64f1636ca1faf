/**
 * A worker frozen with SIGSTOP past the health timeout: its task is requeued and runs elsewhere.
 * After SIGCONT the old attempt's writes are refused by Redis (fencing), the old worker discards
 * its late result, and the record holds only the new attempt's result.
 */
import { Keys, Scripts } from '@taskmesh/common/internal';
import { redis } from '../helpers';
import { Cluster } from './cluster';

describe('worker SIGSTOP then SIGCONT', () => {
  const cluster = new Cluster({ label: 'wstop', workers: 2 });
  const scripts = new Scripts(redis(), new Keys(cluster.prefix));
  beforeAll(() => cluster.start());
  afterAll(async () => {
    await cluster.stop();
    scripts.redis.disconnect();
  });

  test('the task is requeued, and the resumed worker cannot overwrite the new attempt', async () => {
    // `stubborn` ignores its abort signal, so the old worker really does finish its function.
    const id = await cluster.client.submit('stubborn', { ms: 2500 });
    const first = await cluster.waitState(id, (r) => r.state === 'RUNNING' && r.worker !== null, 'first run');
    await cluster.functionStarted(first.worker!, id);
    const oldFence = { epoch: first.epoch, assignment: (await scripts.redis.hget(scripts.keys.task(id), 'assignment'))! };
    const frozen = cluster.worker(first.worker!);
    frozen.signal('SIGSTOP');
    const second = await cluster.waitState(
      id,
      (r) => r.state === 'RUNNING' && r.worker !== first.worker && r.epoch > first.epoch,
      'requeue after missed health checks',
      10000,
    );
    // Every write the old attempt could make is refused now.
    expect(await scripts.start(id, oldFence)).toBe(false);
    expect((await scripts.finish(id, first.worker!, oldFence, 'END', '{"stale":true}')).result).toBe('refused');
    frozen.signal('SIGCONT');
    // Its function returns ~2.5 s after it started; the worker then discards that result.
    await frozen.waitForLog('attempt was taken over; its result is discarded', { task: id }, 10000);
    const end = await cluster.waitState(id, (r) => r.state === 'END', 'END', 15000);
    const final = await cluster.record(id);
    expect(final.state).toBe('END');
    expect(final.worker).toBe(second.worker);
    expect(final.completions).toBe(1);
    const result = final.result as { pid: number; attempt: number };
    expect(result).toEqual(end.result);
    expect(result.attempt).toBe(second.attempts);
    expect(result.pid).toBe(cluster.worker(second.worker!).pid);
    expect(result.pid).not.toBe(frozen.pid);
    // The frozen worker is still alive and serving after it came back.
    expect(frozen.running).toBe(true);
  });
});
