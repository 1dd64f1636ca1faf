/**
 * queue.kind selects the order a distributor hands out runnable tasks (SPEC section 9's Queue
 * kinds): fifo ignores priority, random samples the ready queue, weighted draws task names by
 * their configured weight. Each is checked on the order one worker (concurrency 1) starts them.
 */
import { TaskClient, loadConfig } from '@taskmesh/common';
import {
  cleanPrefix,
  clientConfig,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type Proc,
} from './helpers';

interface Mesh {
  client: TaskClient;
  startWorker(): Proc;
  order(p: Proc): string[];
  stop(): Promise<void>;
}

async function mesh(label: string, queue: Record<string, unknown>): Promise<Mesh> {
  const prefix = randomPrefix(label);
  const dir = tmpDir(label);
  const port = await freePort();
  const procs: Proc[] = [spawnBin('distributor', ['--config', writeConfig(dir, 'd', distributorConfig(prefix, port, { id: `${label}-d`, queue }))], {}, 'd')];
  await procs[0]!.waitForLog('started');
  const client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
  return {
    client,
    startWorker: () => {
      const w = spawnBin(
        'worker',
        ['--config', writeConfig(dir, 'w', workerConfig(prefix, [port], { id: `${label}-w`, concurrency: 1 })), '--tasks', FIXTURE_TASKS],
        {},
        'w',
      );
      procs.push(w);
      return w;
    },
    order: (p) => [...p.output.matchAll(/fixture start task=(\S+) attempt=1/g)].map((m) => m[1]!),
    stop: async () => {
      await Promise.all(procs.map((p) => p.stop()));
      await client.close();
      await cleanPrefix(prefix);
    },
  };
}

/** Pairs out of arrival order: 0 for FIFO, about n(n-1)/4 for a random order. */
function inversions(order: string[], arrival: string[]): number {
  const pos = new Map(arrival.map((id, i) => [id, i]));
  const xs = order.map((id) => pos.get(id)!);
  let n = 0;
  for (let i = 0; i < xs.length; i++) for (let j = i + 1; j < xs.length; j++) if (xs[i]! > xs[j]!) n++;
  return n;
}

describe('queue kinds', () => {
  test('fifo: arrival order, whatever the priority', async () => {
    const m = await mesh('qfifo', { kind: 'fifo' });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push(await m.client.submit('sleep', { ms: 0 }, { priority: i % 2 === 0 ? 0 : 100 }));
      await waitFor('all QUEUED', async () => (await Promise.all(ids.map((id) => m.client.status(id)))).every((r) => r?.state === 'QUEUED'));
      const w = m.startWorker();
      await waitFor('all END', async () => (await Promise.all(ids.map((id) => m.client.status(id)))).every((r) => r?.state === 'END'), 20000);
      await waitFor('all start lines', () => m.order(w).length === 20);
      expect(m.order(w)).toEqual(ids);
    } finally {
      await m.stop();
    }
  });

  test('random: a uniform sample, far from arrival order', async () => {
    const m = await mesh('qrand', { kind: 'random' });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 100; i++) ids.push(await m.client.submit('sleep', { ms: 0 }));
      await waitFor('all QUEUED', async () => (await Promise.all(ids.map((id) => m.client.status(id)))).every((r) => r?.state === 'QUEUED'));
      const w = m.startWorker();
      await waitFor('all started', () => m.order(w).length === 100, 30000);
      const inv = inversions(m.order(w), ids);
      const max = (100 * 99) / 2;
      console.log(`random: ${inv} of ${max} pairs out of arrival order (FIFO: 0, uniform: about ${max / 2})`);
      // A uniform order has mean 2475 and sd ~ 168 inversions; FIFO has 0.
      expect(inv).toBeGreaterThan(max * 0.3);
      expect(inv).toBeLessThan(max * 0.7);
    } finally {
      await m.stop();
    }
  });

  test('weighted: names drawn by their weight', async () => {
    const m = await mesh('qweight', { kind: 'weighted', weights: { sleep: 9, stubborn: 1 } });
    try {
      const heavy: string[] = [];
      const light: string[] = [];
      // Interleaved, so arrival order alone would give half and half.
      for (let i = 0; i < 150; i++) {
        heavy.push(await m.client.submit('sleep', { ms: 0 }));
        light.push(await m.client.submit('stubborn', { ms: 0 }));
      }
      const all = [...heavy, ...light];
      await waitFor('all QUEUED', async () => (await Promise.all(all.map((id) => m.client.status(id)))).every((r) => r?.state === 'QUEUED'), 20000);
      const w = m.startWorker();
      await waitFor('100 started', () => m.order(w).length >= 100, 30000);
      const first = m.order(w).slice(0, 100);
      const h = new Set(heavy);
      const share = first.filter((id) => h.has(id)).length;
      console.log(`weighted 9:1: ${share} of the first 100 runs were the heavy name (FIFO: 50)`);
      // Binomial(100, 0.9): mean 90, sd 3.
      expect(share).toBeGreaterThanOrEqual(78);
      expect(share).toBeLessThan(100);
    } finally {
      await m.stop();
    }
  });
});
