/**
 * A worker never runs more than `concurrency` tasks at once (SPEC section 7), whether set in its
 * config or with `taskmesh-worker --concurrency N` (section 8), and the limit is also used in full.
 */
import { TaskClient, loadConfig, type TaskRecord } from '@taskmesh/common';
import { Distributor } from '@taskmesh/distributor';
import { createWorker, sleep, type Worker } from '@taskmesh/worker';
import {
  cleanPrefix,
  clientConfig,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  redis,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type Proc,
} from './helpers';

/** Most records whose [started_at, ended_at) intervals overlap at one instant. */
function maxOverlap(records: TaskRecord[]): number {
  const points: Array<[number, number]> = [];
  for (const r of records) {
    points.push([r.started_at!, 1]);
    points.push([r.ended_at!, -1]);
  }
  // Ends before starts at the same millisecond: a slot freed and reused is not an overlap.
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, delta] of points) {
    cur += delta;
    max = Math.max(max, cur);
  }
  return max;
}

describe('worker concurrency', () => {
  const prefix = randomPrefix('conc');
  const dir = tmpDir('conc');
  let distributor: Distributor;
  let port: number;
  let worker: Worker | undefined;
  let client: TaskClient;
  const procs: Proc[] = [];

  beforeAll(async () => {
    port = await freePort();
    distributor = new Distributor(loadConfig('distributor', distributorConfig(prefix, port)));
    await distributor.start();
    client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await worker?.close();
    await distributor?.close();
    await client?.close();
    await cleanPrefix(prefix);
  });

  test('an in-process worker with concurrency 3 runs at most 3 at once, and uses all 3', async () => {
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    worker = createWorker(loadConfig('worker', workerConfig(prefix, [port], { id: 'conc-w3', concurrency: 3 })));
    worker.addTask('track', async (config: { i: number }, ctx) => {
      calls++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        await sleep(100, ctx.signal);
      } finally {
        running--;
      }
      return { i: config.i };
    });
    await worker.start();

    const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => client.submit('track', { i })));
    const records = await Promise.all(ids.map((id) => client.wait(id, { timeoutMs: 30000 })));
    records.forEach((r, i) => {
      expect(r.state).toBe('END');
      expect(r.result).toEqual({ i });
      expect(r.attempts).toBe(1);
      expect(r.worker).toBe('conc-w3');
    });
    expect(calls).toBe(30);
    expect(running).toBe(0);
    expect(maxRunning).toBe(3);
    expect(maxOverlap(records)).toBeLessThanOrEqual(3);
    // The worker also publishes its limit.
    const r = redis();
    try {
      expect(await r.hget(`${prefix}worker:conc-w3`, 'concurrency')).toBe('3');
    } finally {
      r.disconnect();
    }
  });

  test('taskmesh-worker --concurrency 2 overrides the config: never more than 2 RUNNING, all END', async () => {
    const w = spawnBin(
      'worker',
      ['--config', writeConfig(dir, 'w2', workerConfig(prefix, [port], { id: 'conc-bin2', concurrency: 16 })), '--tasks', FIXTURE_TASKS, '--concurrency', '2'],
      {},
      'conc-bin2',
    );
    procs.push(w);
    await w.waitForLog('connected to distributor');
    await w.waitForLog('started', { concurrency: 2 });

    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => client.submit('sleep', { ms: 500, token: i })));
    const idSet = new Set(ids);
    const samples: number[] = [];
    const done = await waitFor(
      'all 6 sleep tasks terminal',
      async () => {
        const mine = (await client.list()).filter((r) => idSet.has(r.id));
        samples.push(mine.filter((r) => r.state === 'RUNNING').length);
        return mine.length === 6 && mine.every((r) => r.state === 'END' || r.state === 'FAILED' || r.state === 'CANCELLED') ? mine : null;
      },
      20000,
      20,
    );
    expect(done.map((r) => r.state)).toEqual(Array(6).fill('END'));
    expect(done.every((r) => r.worker === 'conc-bin2' && r.attempts === 1)).toBe(true);
    expect(Math.max(...samples)).toBe(2);
    expect(samples.length).toBeGreaterThan(20);
    expect(maxOverlap(done)).toBe(2);
    // Six 500 ms tasks two at a time take three rounds.
    const span = Math.max(...done.map((r) => r.ended_at!)) - Math.min(...done.map((r) => r.started_at!));
    expect(span).toBeGreaterThanOrEqual(1400);
    const r = redis();
    try {
      expect(await r.hget(`${prefix}worker:conc-bin2`, 'concurrency')).toBe('2');
    } finally {
      r.disconnect();
    }
  });
});
