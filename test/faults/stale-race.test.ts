/**
 * Two distributors' watch loops race on the same stale RUNNING tasks: the requeue script's epoch
 * check lets exactly one of them bump each task's epoch.
 */
import { Keys, Scripts } from '@taskmesh/common/internal';
import { cleanPrefix, distributorConfig, freePort, randomPrefix, redis, spawnBin, tmpDir, waitFor, writeConfig, type Proc, countLogs } from '../helpers';

const N = 1000;

async function seedStale(r: ReturnType<typeof redis>, keys: Keys, label: string): Promise<string[]> {
  const old = Date.now() - 60_000;
  const ids: string[] = [];
  const m = r.multi();
  for (let i = 0; i < N; i++) {
    const id = `${label}-${i}`;
    ids.push(id);
    m.hset(keys.task(id), {
      id,
      name: 'echo',
      config: '{}',
      state: 'RUNNING',
      attempts: 1,
      max_attempts: 3,
      stalls: 0,
      max_stalls: 5,
      failures: 0,
      epoch: 7,
      assignment: 'a-old',
      worker: 'ghost-worker',
      distributor: 'ghost-distributor',
      priority: 0,
      state_optional: '0',
      clean_end: '0',
      cancel: '0',
      completions: 0,
      created_at: old,
      started_at: old,
      updated_at: old,
    });
    m.sadd(keys.tasks, id);
    m.sadd(keys.workerTasks('ghost-worker'), id);
  }
  // As the assign script would have: the worker is in the index of workers with tasks.
  m.sadd(keys.assigned, 'ghost-worker');
  await m.exec();
  return ids;
}

describe('stale requeue race', () => {
  const prefix = randomPrefix('race');
  const keys = new Keys(prefix);
  const r = redis();
  const procs: Proc[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await cleanPrefix(prefix);
    r.disconnect();
  });

  test('two distributor processes: exactly one epoch bump per stale task', async () => {
    const dir = tmpDir('race');
    for (const n of [1, 2]) {
      const port = await freePort();
      procs.push(
        spawnBin(
          'distributor',
          [
            '--config',
            writeConfig(
              dir,
              `d${n}`,
              distributorConfig(prefix, port, { id: `race-d${n}`, watch: { own_interval_ms: 100, all_interval_ms: 150, stale_ms: 1000 } }),
            ),
          ],
          {},
          `d${n}`,
        ),
      );
    }
    for (const p of procs) await p.waitForLog('started');
    // Seeded while both all-tasks loops are running: each scans the same stale tasks, and one
    // loop's snapshot still shows RUNNING what the other is requeueing.
    const ids = await seedStale(r, keys, 'bins');
    const states = async () => (await Promise.all(ids.map((id) => r.hget(keys.task(id), 'state')))).every((s) => s === 'QUEUED');
    await waitFor('all requeued', states, 30000);
    // Log lines travel through pipes after the writes landed: wait until both have drained.
    const logged = () => procs.map((p) => countLogs(p.output, 'task requeued', { task: /^bins-/ }));
    await waitFor('the requeue log lines', () => logged().reduce((a, b) => a + b, 0) >= N, 10000).catch(() => undefined);
    const requeued = logged();
    console.log(`stale race: ${N} stale tasks requeued by the two distributors as ${requeued.join(' + ')}`);
    expect(requeued[0]! + requeued[1]!).toBe(N);
    const after = await Promise.all(ids.map((id) => r.hmget(keys.task(id), 'epoch', 'stalls')));
    for (const [epoch, stalls] of after) {
      expect(epoch).toBe('8');
      expect(stalls).toBe('1');
    }
    expect(await r.zcard(keys.ready('echo'))).toBe(N);
    await Promise.all(procs.map((p) => p.stop()));
  });

  test('the same requeue sent by two clients at once: one wins', async () => {
    const ids = await seedStale(r, keys, 'direct');
    const a = new Scripts(redis(), keys);
    const b = new Scripts(redis(), keys);
    const opts = { staleBefore: Date.now() - 1000, backoffMs: 100, backoffMaxMs: 1000 };
    try {
      const results = await Promise.all(
        ids.flatMap((id) => [a, b].map((s) => s.requeue(id, 'echo', 'ghost-worker', { epoch: 7, assignment: 'a-old' }, 'stale', opts))),
      );
      expect(results.filter((x) => x === 'requeued')).toHaveLength(N);
      expect(results.filter((x) => x === 'skipped')).toHaveLength(N);
      for (const id of ids) expect(await r.hget(keys.task(id), 'epoch')).toBe('8');
    } finally {
      a.redis.disconnect();
      b.redis.disconnect();
    }
  });
});
