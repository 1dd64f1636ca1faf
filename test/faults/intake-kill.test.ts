/**
 * A distributor SIGKILLed in the middle of a batched intake loses nothing: envelopes it moved into
 * its processing list but had not recorded are handed back by another distributor once its hash
 * expires, every task runs, and none is recorded twice.
 */
import { Keys } from '@taskmesh/common/internal';
import {
  cleanPrefix,
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
} from '../helpers';

const N = 10000;

describe('distributor SIGKILL mid-intake', () => {
  const prefix = randomPrefix('ikill');
  const keys = new Keys(prefix);
  const r = redis();
  const procs: Proc[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await cleanPrefix(prefix);
    r.disconnect();
  });

  test(`${N} envelopes, the distributor killed with a batch in its processing list: all END once`, async () => {
    const ids = Array.from({ length: N }, (_, i) => `ik-${i}`);
    for (let i = 0; i < N; i += 1000) {
      const p = r.pipeline();
      for (const id of ids.slice(i, i + 1000)) p.lpush(keys.newTask, JSON.stringify({ id, name: 'echo', config: { id } }));
      await p.exec();
    }
    const dir = tmpDir('ikill');
    // A short health interval: the dead distributor's hash (30 intervals) expires in 3 s.
    const fast = { health: { interval_ms: 100, misses: 3 }, watch: { own_interval_ms: 100, all_interval_ms: 300, stale_ms: 1500 } };
    const d1 = spawnBin('distributor', ['--config', writeConfig(dir, 'd1', distributorConfig(prefix, await freePort(), { id: 'ik-d1', ...fast }))], {}, 'd1');
    procs.push(d1);
    const processing = keys.intake('ik-d1');
    // The kill must land with a batch in the processing list, which is empty for a moment between
    // one batch recorded and the next one taken. So: catch a batch in flight, freeze the
    // distributor (SIGSTOP), let what it had already sent reach Redis (two of our own round
    // trips), and look; kill it if a batch is there, else let it go on and catch another.
    let caught: { held: number; recorded: number; left: number } | null = null;
    let frozenHeld = 0;
    for (let tries = 0; frozenHeld === 0; tries++) {
      if (tries === 20) throw new Error('never froze the distributor with a batch in its processing list');
      caught = await waitFor(
        'a batch in flight',
        async () => {
          const [held, recorded, left] = await Promise.all([r.llen(processing), r.scard(keys.tasks), r.llen(keys.newTask)]);
          return held > 0 && recorded > 0 && left > 0 ? { held, recorded, left } : null;
        },
        15000,
        2,
      );
      d1.signal('SIGSTOP');
      await r.ping();
      await r.ping();
      frozenHeld = await r.llen(processing);
      if (frozenHeld === 0) d1.signal('SIGCONT');
    }
    d1.signal('SIGKILL');
    await d1.exited;
    const held = await r.llen(processing);
    console.log(`killed mid-intake: ${caught!.recorded} recorded, ${caught!.left} still in new-task, ${held} in its processing list at the kill`);
    expect(held).toBeGreaterThan(0);

    const port = await freePort();
    const d2 = spawnBin('distributor', ['--config', writeConfig(dir, 'd2', distributorConfig(prefix, port, { id: 'ik-d2', ...fast }))], {}, 'd2');
    procs.push(d2);
    await d2.waitForLog('started');
    procs.push(
      spawnBin(
        'worker',
        ['--config', writeConfig(dir, 'w', workerConfig(prefix, [port], { id: 'ik-w', concurrency: 100 })), '--tasks', FIXTURE_TASKS],
        {},
        'w',
      ),
    );
    await d2.waitForLog('handed back envelopes', { distributor: 'ik-d1' }, 20000);

    const states = async () => {
      const p = r.pipeline();
      for (const id of ids) p.hmget(keys.task(id), 'state', 'completions', 'result');
      return ((await p.exec()) ?? []).map(([, v]) => v as (string | null)[]);
    };
    await waitFor(`all ${N} END`, async () => (await states()).every(([s]) => s === 'END'), 60000, 250);
    const rows = await states();
    rows.forEach(([, completions, result], i) => {
      expect(completions).toBe('1');
      expect(JSON.parse(result!)).toEqual({ id: ids[i] });
    });
    expect(await r.scard(keys.tasks)).toBe(N);
    expect(await r.llen(keys.newTask)).toBe(0);
    expect(await r.llen(processing)).toBe(0);
    expect(await r.llen(keys.dead)).toBe(0);
  }, 120000);
});
