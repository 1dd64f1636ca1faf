/**
 * Chaos, bounded in time: 500 tasks of 50-500 ms through 2 distributors and 3 workers while one
 * worker is SIGKILLed and restarted about every 2 s. Every task ends END exactly once (one END
 * write accepted, no result overwritten), none is lost, none is left RUNNING.
 */
import { Cluster } from './cluster';

const TASKS = 500;

describe('chaos', () => {
  const cluster = new Cluster({ label: 'chaos', distributors: 2, workers: 3, worker: { concurrency: 4 } });
  beforeAll(() => cluster.start());
  afterAll(() => cluster.stop());

  test('500 tasks under repeated worker SIGKILLs: all END exactly once', async () => {
    const started = Date.now();
    const ids = await Promise.all(Array.from({ length: TASKS }, (_, i) => cluster.client.submit('sleep', { ms: 50 + ((i * 37) % 451), token: i })));
    let kills = 0;
    let chaos = true;
    const monkey = (async () => {
      let n = 0;
      while (chaos) {
        await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1000));
        if (!chaos) break;
        const id = `w${(n++ % 3) + 1}`;
        const p = cluster.worker(id);
        p.signal('SIGKILL');
        await p.exited;
        kills++;
        cluster.startWorker(id);
      }
    })();
    const records = await Promise.all(ids.map((id) => cluster.client.wait(id, { timeoutMs: 120000 })));
    chaos = false;
    await monkey;
    const byState = new Map<string, number>();
    for (const r of records) byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
    const rerun = records.filter((r) => r.attempts > 1).length;
    const runs = records.reduce((s, r) => s + r.attempts, 0);
    const completions = records.reduce((s, r) => s + r.completions, 0);
    console.log(
      `chaos: ${TASKS} tasks in ${((Date.now() - started) / 1000).toFixed(1)} s, ${kills} worker SIGKILLs, ` +
        `states ${JSON.stringify(Object.fromEntries(byState))}, ${rerun} tasks re-run, ${runs} runs, ${completions} accepted END writes`,
    );
    expect(byState.get('END')).toBe(TASKS);
    expect(completions).toBe(TASKS);
    records.forEach((r, i) => {
      expect(r.completions).toBe(1);
      expect((r.result as { token: number }).token).toBe(i);
      expect((r.result as { attempt: number }).attempt).toBe(r.attempts);
    });
    expect(kills).toBeGreaterThanOrEqual(1);
    const left = await cluster.client.list({ state: 'RUNNING' });
    expect(left).toHaveLength(0);
  });
});
