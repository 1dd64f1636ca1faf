/**
 * taskmesh on a real 3-master Redis Cluster started by the test (free loopback ports, 0 replicas):
 * every process uses a cluster client (`redis.cluster`), and each mesh's keys share the hash tag
 * of its prefix, so every script runs on the one master that owns that slot.
 * - the flow: tasks from intake to END;
 * - a worker SIGKILL: the task runs on another worker and ends END once;
 * - a distributor SIGKILL: nothing is lost, nothing restarted;
 * - three meshes with different hash tags, each on its own master, working at once.
 */
import { loadConfig } from '@taskmesh/common';
import { createRedis, closeRedis, Scripts, Keys } from '@taskmesh/common/internal';
import { waitFor } from '../helpers';
import { Mesh, RedisCluster, withRedis } from './servers';

jest.setTimeout(60000);

describe('Redis Cluster, 3 masters', () => {
  let cluster: RedisCluster;
  const meshes: Mesh[] = [];
  const mesh = async (label: string, prefix: string, opts: Partial<ConstructorParameters<typeof Mesh>[0]> = {}) => {
    const m = new Mesh({ label, prefix, redis: { cluster: cluster.seeds }, ...opts });
    meshes.push(m);
    try {
      return await m.start();
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${m.logs()}`, { cause: err });
    }
  };

  beforeAll(async () => {
    const t0 = Date.now();
    cluster = await RedisCluster.start(3);
    console.log(`3-master cluster up in ${Date.now() - t0} ms on ports ${cluster.nodes.map((n) => n.port).join(', ')}`);
  });
  afterAll(async () => {
    await Promise.all(meshes.map((m) => m.stop()));
    await cluster?.stop();
  });

  test('the flow: 300 tasks from intake to END, all keys on the master of the hash tag', async () => {
    const [{ prefix, master }] = await cluster.prefixesOnDistinctMasters('flow', 1);
    const m = await mesh('cflow', prefix!, { workers: 2 });
    const t0 = Date.now();
    const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => m.client.submit('echo', { i })));
    const records = await Promise.all(ids.map((id) => m.client.wait(id, { timeoutMs: 30000 })));
    console.log(`cluster flow: 300 echo tasks END in ${Date.now() - t0} ms`);
    records.forEach((r, i) => {
      expect(r.state).toBe('END');
      expect(r.result).toEqual({ i });
      expect(r.completions).toBe(1);
    });
    expect(new Set(records.map((r) => r.worker)).size).toBe(2);
    // Every key of the mesh is in the slot of its hash tag, which the chosen master serves.
    const keys = await Promise.all(cluster.nodes.map((n) => withRedis(n.port, (r) => r.keys(`${prefix!}*`))));
    const perMaster = new Map(cluster.nodes.map((n, i) => [n.port, keys[i]!.length]));
    console.log(`cluster flow: keys of ${prefix} per master ${JSON.stringify(Object.fromEntries(perMaster))}`);
    expect(perMaster.get(master!)).toBeGreaterThan(300);
    for (const [port, n] of perMaster) if (port !== master) expect(n).toBe(0);
  });

  test('a worker SIGKILL: its task runs on another worker and ends END once', async () => {
    const [{ prefix }] = await cluster.prefixesOnDistinctMasters('wkill', 1);
    const m = await mesh('cwkill', prefix!, { workers: 2 });
    const id = await m.client.submit('sleep', { ms: 2500 });
    const first = await m.waitState(id, (r) => r.state === 'RUNNING' && r.worker !== null, 'first run');
    await m.worker(first.worker!).waitForOutput(new RegExp(`fixture start task=${id} attempt=1`));
    m.worker(first.worker!).signal('SIGKILL');
    const killedAt = Date.now();
    const second = await m.waitState(id, (r) => r.state === 'RUNNING' && r.worker !== first.worker && r.epoch > first.epoch, 'requeued run', 10000);
    console.log(`cluster worker SIGKILL -> RUNNING on ${second.worker} in ${Date.now() - killedAt} ms, epoch ${first.epoch} -> ${second.epoch}`);
    const end = await m.waitState(id, (r) => r.state === 'END', 'END', 15000);
    expect(end.worker).toBe(second.worker);
    expect(end.completions).toBe(1);
    expect(end.attempts).toBe(2);
    expect(end.stalls).toBe(1);
  });

  test('a distributor SIGKILL: 20 running tasks end END once, none restarted, intake goes on', async () => {
    const [{ prefix }] = await cluster.prefixesOnDistinctMasters('dkill', 1);
    const m = await mesh('cdkill', prefix!, { distributors: 2, workers: 3 });
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => m.client.submit('sleep', { ms: 4000, token: i })));
    await waitFor('20 RUNNING', async () => (await m.records(ids)).every((r) => r.state === 'RUNNING'), 15000, 50);
    const records = await m.records(ids);
    const counts = new Map<string, number>();
    for (const r of records) counts.set(r.distributor!, (counts.get(r.distributor!) ?? 0) + 1);
    const [victimId] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]!;
    const victim = m.distributors.find((d) => d.name === victimId)!;
    victim.signal('SIGKILL');
    await victim.exited;
    const ends = await m.allTerminal(ids, 25000);
    const epochs = new Map(records.map((r) => [r.id, r.epoch]));
    for (const r of ends) {
      expect(r.state).toBe('END');
      expect(r.completions).toBe(1);
      expect(r.attempts).toBe(1);
      expect(r.epoch).toBe(epochs.get(r.id));
    }
    const extra = await m.client.submit('echo', { after: 'kill' });
    expect((await m.client.wait(extra, { timeoutMs: 10000 })).result).toEqual({ after: 'kill' });
    console.log(`cluster distributor SIGKILL: killed ${victimId} (${counts.get(victimId)} of 20 assigned), 20 END once, intake goes on`);
  });

  test('three meshes with different hash tags, one per master, work at once', async () => {
    const tags = await cluster.prefixesOnDistinctMasters('mesh', 3);
    const ms = await Promise.all(tags.map(({ prefix }, i) => mesh(`cmesh${i}`, prefix, { workers: 1, worker: { concurrency: 16 } })));
    const before = await cluster.commandsProcessed();
    const t0 = Date.now();
    const all = await Promise.all(
      ms.map(async (m, i) => {
        const ids = await Promise.all(Array.from({ length: 300 }, (_, j) => m.client.submit('echo', { mesh: i, j })));
        return Promise.all(ids.map((id) => m.client.wait(id, { timeoutMs: 40000 })));
      }),
    );
    const took = Date.now() - t0;
    const after = await cluster.commandsProcessed();
    all.forEach((records, i) =>
      records.forEach((r, j) => {
        expect(r.state).toBe('END');
        expect(r.result).toEqual({ mesh: i, j });
        expect(r.completions).toBe(1);
      }),
    );
    const delta = new Map([...after].map(([port, n]) => [port, n - (before.get(port) ?? 0)]));
    console.log(
      `three meshes: 3 x 300 echo tasks END in ${took} ms; commands per master ${JSON.stringify(Object.fromEntries(delta))}; tags ${tags.map((t) => `${t.prefix}->${t.master}`).join(' ')}`,
    );
    // Each master carried its own mesh: every one of them did real work.
    for (const { master } of tags) expect(delta.get(master)).toBeGreaterThan(3000);
  });

  // Last: it freezes the whole cluster.
  test('the cluster client: commands bounded by redis.command_timeout_ms while the cluster is silent; close and ready drive the Redis-up logic', async () => {
    const config = loadConfig('cli', { redis: { prefix: '{bound}:', cluster: cluster.seeds, command_timeout_ms: 500 } });
    const redis = createRedis(config.redis, { name: 'topology-test' });
    const events: string[] = [];
    redis.on('ready', () => events.push('ready'));
    redis.on('close', () => events.push('close'));
    try {
      // Scripts (defineCommand, EVALSHA with a NOSCRIPT fallback), pipeline and multi on one slot.
      const scripts = new Scripts(redis, new Keys('{bound}:'));
      expect(await scripts.touchWorkers(['nobody'], 1000)).toBe(0);
      const pipe = await redis.pipeline().set('{bound}:a', '1').get('{bound}:a').exec();
      expect(pipe?.[1]?.[1]).toBe('1');
      expect(await redis.multi().incr('{bound}:n').incr('{bound}:n').exec()).toEqual([
        [null, 1],
        [null, 2],
      ]);
      // A silent partition: every node frozen. The command is refused within its bound.
      for (const n of cluster.nodes) n.proc.kill('SIGSTOP');
      const t0 = Date.now();
      await expect(redis.get('{bound}:a')).rejects.toThrow();
      const took = Date.now() - t0;
      for (const n of cluster.nodes) n.proc.kill('SIGCONT');
      console.log(`cluster client: a command against a frozen cluster failed after ${took} ms (command_timeout_ms 500)`);
      expect(took).toBeLessThan(1500);
      await waitFor('the cluster to answer again', async () => (await redis.get('{bound}:a')) === '1', 15000, 100);
      // Every node gone: 'close' (the worker and distributor mark Redis down); a command waits in
      // the client's offline queue, and is still refused within its bound; 'ready' once back.
      events.length = 0;
      await Promise.all(cluster.nodes.map((n) => n.kill('SIGKILL')));
      await waitFor("'close'", () => events.includes('close'), 5000);
      const t1 = Date.now();
      await expect(redis.get('{bound}:a')).rejects.toThrow();
      const offline = Date.now() - t1;
      console.log(`cluster client: every node killed -> 'close'; a command meanwhile failed after ${offline} ms`);
      expect(offline).toBeLessThan(1500);
      await Promise.all(cluster.nodes.map((n) => n.restart()));
      await waitFor("'ready' after the nodes came back", () => events.includes('ready'), 20000, 100);
      await waitFor('a write to land again', async () => (await redis.set('{bound}:b', '2')) === 'OK', 15000, 100);
      expect(events[0]).toBe('close');
    } finally {
      for (const n of cluster.nodes) n.proc.kill('SIGCONT');
      await closeRedis(redis);
    }
  });
});
