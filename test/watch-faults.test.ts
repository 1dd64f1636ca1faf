/**
 * Watching through faults: a watch follows a task whose worker is SIGKILLed onto its new worker,
 * and a stalled (SIGSTOPped) watcher process neither grows the worker's memory nor slows the task.
 */
import { readFileSync } from 'node:fs';
import type { TaskEvent } from '@taskmesh/common';
import { spawnBin, waitFor } from './helpers';
import { collect, expectOrdered, WatchCluster } from './watch-cluster';

function rssBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : 0;
}

describe('watch through a worker SIGKILL', () => {
  const c = new WatchCluster('watchkill', 2);
  beforeAll(() => c.start());
  afterAll(() => c.stop());

  test('the watch follows the task onto its new worker and ends on END', async () => {
    const id = await c.client.submit('steps', { n: 30, ms: 100 });
    let killed: string | undefined;
    const events = await collect(c.watcher().watch(id), (e) => {
      if (!killed && e.attempt === 1 && e.type === 'progress' && Number(e.done) >= 5) {
        void c.client.status(id).then((r) => {
          killed = r!.worker!;
          c.worker(killed).signal('SIGKILL');
        });
        killed = 'pending';
      }
    });
    expect(killed).toBeDefined();
    const first = events.filter((e) => e.attempt === 1);
    const second = events.filter((e) => e.attempt === 2);
    expect(first[0]).toMatchObject({ type: 'state', state: 'RUNNING', seq: 1 });
    expect(first.filter((e) => e.type === 'progress').length).toBeGreaterThanOrEqual(5);
    expect(second[0]).toMatchObject({ type: 'state', state: 'RUNNING', seq: 1 });
    expect(second.filter((e) => e.type === 'progress')).toHaveLength(30);
    expect(events.at(-1)).toMatchObject({ attempt: 2, type: 'state', state: 'END', result: { n: 30, attempt: 2 } });
    expectOrdered(events);
    const rec = await c.client.status(id);
    expect(rec?.worker).not.toBe(killed);
  });
});

describe('a stalled watcher', () => {
  const c = new WatchCluster('watchstop', 1);
  beforeAll(() => c.start());
  afterAll(() => c.stop());

  test('SIGSTOPped, it does not grow the worker RSS past a bound nor delay the task', async () => {
    const workerPid = c.worker([...c.workers.keys()][0]!).pid;
    const flood = { count: 50000, size: 2000 }; // 100 MB of progress events
    const base = await c.client.submit('flood', { ...flood, delayMs: 0 });
    const baseline = (await c.client.wait(base, { timeoutMs: 30000 })).result as { ms: number };

    const id = await c.client.submit('flood', { ...flood, delayMs: 1500 });
    const watch = spawnBin('watch', ['--config', c.watcherConfigFile(), '--json', id], {}, 'stalled-watch');
    try {
      await watch.waitForOutput(/"type":"progress"/);
      watch.signal('SIGSTOP');
      const rssBefore = rssBytes(workerPid);
      let rssMax = rssBefore;
      const rec = await waitFor(
        'the flood to end',
        async () => {
          rssMax = Math.max(rssMax, rssBytes(workerPid));
          const r = await c.client.status(id);
          return r?.state === 'END' ? r : null;
        },
        30000,
        20,
      );
      const took = (rec.result as { ms: number }).ms;
      console.log(
        `stalled watcher: worker RSS ${Math.round(rssBefore / 2 ** 20)} -> max ${Math.round(rssMax / 2 ** 20)} MiB; flood took ${took} ms (no watcher: ${baseline.ms} ms)`,
      );
      expect(rssMax - rssBefore).toBeLessThan(48 * 2 ** 20);
      expect(took).toBeLessThan(baseline.ms * 4 + 300);
      // Woken up, it catches up (after a gap) and still exits on END.
      watch.signal('SIGCONT');
      const { code } = await watch.exited;
      expect(code).toBe(0);
      const lines = watch.output
        .split('\n')
        .filter((l) => l.startsWith('{"task"'))
        .map((l) => JSON.parse(l) as TaskEvent);
      expect(lines.at(-1)).toMatchObject({ type: 'state', state: 'END' });
      expect(lines.some((e) => e.type === 'gap')).toBe(true);
    } finally {
      await watch.stop();
    }
  });
});
