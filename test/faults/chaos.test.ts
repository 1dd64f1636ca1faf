/**
 * Chaos, bounded in time: 500 tasks of 50-500 ms through 2 distributors and 3 workers while one
 * worker is SIGKILLed and restarted about every 2 s. Every task ends END exactly once (one END
 * write accepted, no result overwritten), none is lost, none is left RUNNING.
 */
import { Keys } from '@taskmesh/common/internal';
import { redis, waitFor } from '../helpers';
import { Cluster } from './cluster';

const TASKS = 500;

describe('chaos', () => {
  const cluster = new Cluster({ label: 'chaos', distributors: 2, workers: 3, worker: { concurrency: 4 } });
  const r = redis();
  let chaos = false;
  let kills = 0;
  let monkey: Promise<void> = Promise.resolve();
  beforeAll(() => cluster.start());
  afterAll(async () => {
    // Stop the monkey first, or it would restart a worker after the cluster stopped.
    chaos = false;
    await monkey;
    await cluster.stop();
    r.disconnect();
  });

  test('500 tasks under repeated worker SIGKILLs: all END exactly once', async () => {
    const started = Date.now();
    const ids = await Promise.all(Array.from({ length: TASKS }, (_, i) => cluster.client.submit('sleep', { ms: 50 + ((i * 37) % 451), token: i })));
    chaos = true;
    monkey = (async () => {
      let n = 0;
      while (chaos) {
        await new Promise((res) => setTimeout(res, 1500 + Math.random() * 1000));
        if (!chaos) break;
        const id = `w${(n++ % 3) + 1}`;
        const p = cluster.worker(id);
        p.signal('SIGKILL');
        await p.exited;
        kills++;
        if (!chaos) break;
        cluster.startWorker(id);
      }
    })();
    const records = await Promise.all(ids.map((id) => cluster.client.wait(id, { timeoutMs: 150_000 })));
    const elapsed = Date.now() - started;
    chaos = false;
    await monkey;
    const byState = new Map<string, number>();
    for (const rec of records) byState.set(rec.state, (byState.get(rec.state) ?? 0) + 1);
    const rerun = records.filter((rec) => rec.attempts > 1).length;
    const runs = records.reduce((sum, rec) => sum + rec.attempts, 0);
    console.log(
      `chaos: ${TASKS} tasks in ${(elapsed / 1000).toFixed(1)} s, ${kills} worker SIGKILLs, ` +
        `states ${JSON.stringify(Object.fromEntries(byState))}, ${rerun} tasks re-run, ${runs} runs, ` +
        `${records.reduce((sum, rec) => sum + rec.completions, 0)} accepted END writes`,
    );
    expect(byState.get('END')).toBe(TASKS);
    expect(kills).toBeGreaterThanOrEqual(Math.floor(elapsed / 2500));
    // Quiet: no function runs anywhere and nothing waits in a queue. Only then is a late write
    // by an old run ruled out, so read every record again.
    const keys = new Keys(cluster.prefix);
    await waitFor(
      'every worker idle and every queue empty',
      async () => {
        const running = await Promise.all([...cluster.workers.keys()].map((w) => r.hget(keys.worker(w), 'running')));
        const queued = (await r.llen(keys.newTask)) + (await r.zcard(keys.ready('sleep'))) + (await r.zcard(keys.delayed));
        return running.every((x) => x === null || x === '0') && queued === 0;
      },
      20000,
    );
    const finals = await Promise.all(ids.map((id) => cluster.record(id)));
    finals.forEach((rec, i) => {
      expect(rec.state).toBe('END');
      expect(rec.completions).toBe(1);
      expect((rec.result as { token: number }).token).toBe(i);
      expect((rec.result as { attempt: number }).attempt).toBe(rec.attempts);
      expect(rec.result).toEqual(records[i]!.result);
    });
  }, 180_000);
});
