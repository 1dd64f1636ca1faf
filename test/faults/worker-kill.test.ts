/**
 * A worker SIGKILLed mid-task: the distributor sees its stream close, requeues its task with a
 * higher epoch, and another worker runs it, within 2 x health.interval_ms + 500 ms.
 * The task ends END exactly once.
 */
import { Cluster } from './cluster';

const INTERVAL = 500;

describe('worker SIGKILL', () => {
  const cluster = new Cluster({
    label: 'wkill',
    workers: 2,
    distributor: { health: { interval_ms: INTERVAL, misses: 3 } },
    worker: { health: { interval_ms: INTERVAL, misses: 3 } },
  });
  beforeAll(() => cluster.start());
  afterAll(() => cluster.stop());

  test('its task runs on another worker within 2 x interval + 500 ms, with a higher epoch, and ends END once', async () => {
    const id = await cluster.client.submit('sleep', { ms: 3000 });
    const first = await cluster.waitState(id, (r) => r.state === 'RUNNING' && r.worker !== null, 'first run');
    await cluster.functionStarted(first.worker!, id);
    const victim = cluster.worker(first.worker!);
    victim.signal('SIGKILL');
    const killedAt = Date.now();
    const second = await cluster.waitState(id, (r) => r.state === 'RUNNING' && r.worker !== first.worker && r.epoch > first.epoch, 'requeued run', 10000);
    const took = Date.now() - killedAt;
    console.log(`worker SIGKILL -> RUNNING on ${second.worker} in ${took} ms (bound ${2 * INTERVAL + 500} ms), epoch ${first.epoch} -> ${second.epoch}`);
    expect(took).toBeLessThanOrEqual(2 * INTERVAL + 500);
    expect(second.stalls).toBe(1);
    expect(second.attempts).toBe(2);
    const end = await cluster.waitState(id, (r) => r.state === 'END', 'END', 15000);
    expect(end.worker).toBe(second.worker);
    expect(end.completions).toBe(1);
    expect((end.result as { attempt: number }).attempt).toBe(2);
  });
});
