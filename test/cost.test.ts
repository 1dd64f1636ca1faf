/**
 * Supervision costs O(workers + changes) per interval, never O(tasks): one worker heartbeat costs
 * the same number of Redis commands with 1 and with 1,000 running tasks, and terminal records
 * leave after retention.terminal_ms with their id.
 */
import { Keys } from '@taskmesh/common/internal';
import { TaskClient, loadConfig } from '@taskmesh/common';
import {
  cleanPrefix,
  clientConfig,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  redis,
  RedisServer,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type Proc,
} from './helpers';
import { Cluster } from './faults/cluster';

/** Redis's own counters: commands processed, EVALSHA calls (one per heartbeat here), INFO calls. */
async function counters(r: ReturnType<typeof redis>): Promise<{ total: number; evalsha: number; info: number }> {
  const all = await r.info('all');
  const n = (re: RegExp) => Number(re.exec(all)?.[1] ?? 0);
  return { total: n(/total_commands_processed:(\d+)/), evalsha: n(/cmdstat_evalsha:calls=(\d+)/), info: n(/cmdstat_info:calls=(\d+)/) };
}

describe('heartbeat cost', () => {
  let server: RedisServer;
  const procs: Proc[] = [];
  let r: ReturnType<typeof redis>;
  let client: TaskClient;
  const prefix = randomPrefix('hbcost');
  beforeAll(async () => {
    server = await RedisServer.start();
    r = redis(server.url);
    client = new TaskClient(loadConfig('cli', clientConfig(prefix, server.url)));
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await client.close();
    r.disconnect();
    await server.stopProcess();
  });

  /** Redis commands per worker heartbeat, counted while only the worker talks to Redis (its distributor is frozen). */
  async function perHeartbeat(d: Proc): Promise<number> {
    d.signal('SIGSTOP');
    try {
      // Let whatever the distributor had in flight land before counting.
      const first = await counters(r);
      await waitFor('two heartbeats', async () => (await counters(r)).evalsha >= first.evalsha + 2, 10000);
      const a = await counters(r);
      await waitFor('twenty heartbeats', async () => (await counters(r)).evalsha >= a.evalsha + 20, 15000, 50);
      const b = await counters(r);
      // The polling's own INFO calls are counted by Redis too: take them out.
      return (b.total - a.total - (b.info - a.info)) / (b.evalsha - a.evalsha);
    } finally {
      d.signal('SIGCONT');
    }
  }

  test('one heartbeat costs the same commands with 1 and with 1,000 running tasks', async () => {
    const dir = tmpDir('hbcost');
    const port = await freePort();
    // Long health timeouts: the frozen distributor must not be declared down while we count.
    const health = { interval_ms: 100, misses: 1000 };
    const d = spawnBin(
      'distributor',
      [
        '--config',
        writeConfig(
          dir,
          'd',
          distributorConfig(prefix, port, { id: 'hb-d', health, watch: { own_interval_ms: 100, all_interval_ms: 1000, stale_ms: 60000 } }, server.url),
        ),
      ],
      {},
      'd',
    );
    procs.push(d);
    await d.waitForLog('started');
    const w = spawnBin(
      'worker',
      ['--config', writeConfig(dir, 'w', workerConfig(prefix, [port], { id: 'hb-w', concurrency: 1000, health }, server.url)), '--tasks', FIXTURE_TASKS],
      {},
      'w',
    );
    procs.push(w);
    await d.waitForLog('worker connected', { worker: 'hb-w' });
    const keys = new Keys(prefix);

    await client.submit('sleep', { ms: 120000 });
    await waitFor('1 running', async () => (await r.scard(keys.workerTasks('hb-w'))) === 1 && (await r.hget(keys.worker('hb-w'), 'running')) === '1');
    const one = await perHeartbeat(d);

    for (let i = 0; i < 999; i++) await client.submit('sleep', { ms: 120000 });
    await waitFor(
      '1000 running',
      async () => (await r.scard(keys.workerTasks('hb-w'))) === 1000 && (await r.hget(keys.worker('hb-w'), 'running')) === '1000',
      30000,
    );
    const thousand = await perHeartbeat(d);

    console.log(`Redis commands per worker heartbeat: ${one.toFixed(2)} with 1 running task, ${thousand.toFixed(2)} with 1000`);
    expect(one).toBeLessThanOrEqual(8);
    expect(Math.abs(thousand - one)).toBeLessThan(0.5);
  }, 120000);
});

describe('retention', () => {
  const prefix = randomPrefix('retain');
  const keys = new Keys(prefix);
  const r = redis();
  const procs: Proc[] = [];
  let client: TaskClient;
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await client?.close();
    await cleanPrefix(prefix);
    r.disconnect();
  });

  test('a terminal record past retention.terminal_ms is gone with its id; live ones stay', async () => {
    const dir = tmpDir('retain');
    const port = await freePort();
    procs.push(
      spawnBin(
        'distributor',
        [
          '--config',
          writeConfig(
            dir,
            'd',
            distributorConfig(prefix, port, {
              id: 'ret-d',
              retention: { terminal_ms: 1500 },
              watch: { own_interval_ms: 200, all_interval_ms: 200, stale_ms: 1500 },
            }),
          ),
        ],
        {},
        'd',
      ),
    );
    await procs[0]!.waitForLog('started');
    procs.push(spawnBin('worker', ['--config', writeConfig(dir, 'w', workerConfig(prefix, [port], { id: 'ret-w' })), '--tasks', FIXTURE_TASKS], {}, 'w'));
    await procs[0]!.waitForLog('worker connected', { worker: 'ret-w' });
    client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
    const done = await client.submit('echo', { n: 1 });
    const failed = await client.submit('fail', {}, { max_attempts: 1 });
    const long = await client.submit('sleep', { ms: 20000 });
    const end = await client.wait(done, { timeoutMs: 10000 });
    expect(end.state).toBe('END');
    expect((await client.wait(failed, { timeoutMs: 10000 })).state).toBe('FAILED');
    expect(await r.zscore(keys.ended, done)).not.toBeNull();
    // Still there well before its time is up.
    expect(await r.sismember(keys.tasks, done)).toBe(1);
    await waitFor('the END record to be removed', async () => (await r.exists(keys.task(done))) === 0, 10000);
    const removedAfter = Date.now() - end.ended_at!;
    expect(removedAfter).toBeGreaterThanOrEqual(1500);
    await waitFor('the FAILED record to be removed', async () => (await r.exists(keys.task(failed))) === 0, 10000);
    for (const id of [done, failed]) {
      expect(await r.sismember(keys.tasks, id)).toBe(0);
      expect(await r.zscore(keys.ended, id)).toBeNull();
    }
    // A running task is not terminal: it stays, whatever its age.
    const live = await client.status(long);
    expect(live?.state).toBe('RUNNING');
    expect(await r.sismember(keys.tasks, long)).toBe(1);
    await expect(client.status(done)).resolves.toBeNull();
  });
});

describe('idle cost', () => {
  // A Redis of its own: the test counts the read events the mesh causes.
  let server: RedisServer;
  let r: ReturnType<typeof redis>;
  let cluster: Cluster;
  const interval = 250;
  beforeAll(async () => {
    server = await RedisServer.start();
    r = redis(server.url);
    const health = { interval_ms: interval, misses: 4 };
    const watch = { own_interval_ms: interval, all_interval_ms: 10 * interval, stale_ms: 6 * interval };
    cluster = await new Cluster({ label: 'idlecost', workers: 1, redisUrl: server.url, distributor: { health, watch }, worker: { health } }).start();
  });
  afterAll(async () => {
    await cluster.stop();
    r.disconnect();
    await server.stopProcess();
  });

  // An idle Redis pays for each read event (a wakeup: about 80 µs of CPU here whatever the
  // commands, docs/performance.md W4), so an idle mesh's cost is its round trips per interval.
  test('an idle distributor and worker cost Redis about two round trips per interval', async () => {
    const keys = new Keys(cluster.prefix);
    const reads = async () => Number(/total_reads_processed:(\d+)/.exec(await r.info('stats'))?.[1]);
    // Past start-up (registration, the first passes): the worker's heartbeat has moved on twice.
    const beat = async () => Number(await r.hget(keys.worker('w1'), 'updated_at'));
    const first = await waitFor('a first heartbeat', async () => (await beat()) || null);
    await waitFor('two more heartbeats', async () => (await beat()) >= first + 2 * interval);
    const t0 = Date.now();
    const a = await reads();
    // A window of a set length, not a wait for a condition: the figure is a rate over it.
    await waitFor('40 intervals', async () => Date.now() - t0 > 40 * interval, 30000, 500);
    const b = await reads();
    const elapsed = Date.now() - t0;
    // Less this test's own INFO call inside the window (waitFor's checks read no Redis).
    const perInterval = ((b - a - 1) * interval) / elapsed;
    console.log(`idle mesh: ${perInterval.toFixed(2)} Redis read events per ${interval} ms interval`);
    // One for the distributor (its heartbeat and own-tasks reads share a round trip), one for the
    // worker's heartbeat, a blocking read every 5 s and the all-tasks pass (one round trip) every
    // 10 intervals: about 2.2. It was about 8 before the own-tasks reads were pipelined and the
    // idle dispatch skipped, and about 4 before those shared the heartbeat's round trip.
    expect(perInterval).toBeLessThan(3);
  }, 60000);
});
