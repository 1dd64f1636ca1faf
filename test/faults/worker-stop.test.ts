/**
 * A worker frozen with SIGSTOP past the health timeout: its task is requeued and runs elsewhere.
 * After SIGCONT the old worker's late result is refused (fencing), it stops the task, and the
 * record holds only the new attempt's result.
 */
import { Cluster } from './cluster';

describe('worker SIGSTOP then SIGCONT', () => {
  const cluster = new Cluster({ label: 'wstop', workers: 2 });
  beforeAll(() => cluster.start());
  afterAll(() => cluster.stop());

  test('the task is requeued, and the resumed worker cannot overwrite the new attempt', async () => {
    // `stubborn` ignores its abort signal, so the old worker really does finish and try to write.
    const id = await cluster.client.submit('stubborn', { ms: 2500 });
    const first = await cluster.waitState(id, (r) => r.state === 'RUNNING' && r.worker !== null, 'first run');
    const frozen = cluster.worker(first.worker!);
    frozen.signal('SIGSTOP');
    const second = await cluster.waitState(id, (r) => r.state === 'RUNNING' && r.worker !== first.worker && r.epoch > first.epoch, 'requeue after missed health checks', 10000);
    frozen.signal('SIGCONT');
    await frozen.waitForOutput(/taken over/, 10000);
    const end = await cluster.waitState(id, (r) => r.state === 'END', 'END', 15000);
    expect(end.worker).toBe(second.worker);
    expect(end.completions).toBe(1);
    const result = end.result as { pid: number; attempt: number };
    expect(result.attempt).toBe(second.attempts);
    expect(result.pid).toBe(cluster.worker(second.worker!).pid);
    expect(result.pid).not.toBe(frozen.pid);
    // The frozen worker is still alive and serving after it came back.
    expect(frozen.running).toBe(true);
  });
});
