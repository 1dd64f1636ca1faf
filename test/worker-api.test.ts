/**
 * The worker library's seed rows: `add`, `delete` and `close` events (the assemblage seed), an
 * existing Redis connection shared through `redis.client`, and two meshes (prefixes) on one Redis
 * that never see each other's tasks.
 */
import { TaskClient, loadConfig, type WorkerConfig } from '@taskmesh/common';
import { createWorker, sleep, type TaskInfo, type Worker } from '@taskmesh/worker';
import {
  cleanPrefix,
  clientConfig,
  distributorConfig,
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

describe('worker library', () => {
  const dir = tmpDir('wapi');
  const meshes = [randomPrefix('wapiA'), randomPrefix('wapiB')];
  const procs: Proc[] = [];
  const workers: Worker[] = [];
  const clients: TaskClient[] = [];
  const shared = redis();
  const ports: number[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(meshes.map((m) => cleanPrefix(m)));
    shared.disconnect();
  });

  beforeAll(async () => {
    for (const [i, prefix] of meshes.entries()) {
      const port = await freePort();
      ports.push(port);
      const d = spawnBin('distributor', ['--config', writeConfig(dir, `d${i}`, distributorConfig(prefix, port, { id: `wapi-d${i}` }))], {}, `d${i}`);
      procs.push(d);
      await d.waitForLog('started');
      // Both workers and both clients share one ioredis connection.
      const cfg = loadConfig('worker', writeConfig(dir, `w${i}`, workerConfig(prefix, [port], { id: `wapi-w${i}` })));
      const w = createWorker({ ...cfg, redis: { ...cfg.redis, client: shared } } as WorkerConfig);
      w.addTask('whoami', async () => ({ mesh: i }));
      w.addTask('wait', async (_c, ctx) => {
        await sleep(30000, ctx.signal);
        return null;
      });
      workers.push(w);
      const cli = loadConfig('cli', clientConfig(prefix));
      clients.push(new TaskClient({ ...cli, redis: { ...cli.redis, client: shared } }));
    }
    await Promise.all(workers.map((w) => w.start()));
    for (const [i, d] of procs.entries()) await d.waitForLog('worker connected', { worker: `wapi-w${i}` });
  });

  test('two prefixes on one Redis stay apart, over one shared connection', async () => {
    const ids = await Promise.all(clients.flatMap((c) => Array.from({ length: 20 }, () => c.submit('whoami', {}))));
    const recs = await Promise.all(ids.map((id, k) => clients[k < 20 ? 0 : 1]!.wait(id, { timeoutMs: 15000 })));
    recs.forEach((r, k) => {
      const mesh = k < 20 ? 0 : 1;
      expect(r.state).toBe('END');
      expect(r.result).toEqual({ mesh });
      expect(r.worker).toBe(`wapi-w${mesh}`);
      expect(r.distributor).toBe(`wapi-d${mesh}`);
    });
    // Neither mesh can see the other's tasks.
    expect(await clients[1]!.status(ids[0]!)).toBeNull();
    expect(await clients[0]!.status(ids[20]!)).toBeNull();
    // The shared connection is still the caller's and still open.
    expect(await shared.ping()).toBe('PONG');
  });

  test('add and delete events name the attempt; delete says why; close when the worker closed', async () => {
    const w = workers[0]!;
    const added: TaskInfo[] = [];
    const deleted: (TaskInfo & { reason: string })[] = [];
    w.on('add', (t) => added.push(t));
    w.on('delete', (t) => deleted.push(t));
    const id = await clients[0]!.submit('wait', { n: 7 });
    await waitFor('add', () => added.find((t) => t.id === id));
    expect(added.find((t) => t.id === id)).toMatchObject({ id, name: 'wait', attempt: 1, config: { n: 7 } });
    await clients[0]!.cancel(id);
    const del = await waitFor('delete', () => deleted.find((t) => t.id === id));
    expect(del).toMatchObject({ id, name: 'wait', reason: 'TASK_CANCELLED' });
    expect((await clients[0]!.wait(id, { timeoutMs: 5000 })).state).toBe('CANCELLED');

    // Closing stops what runs (a delete for each) and then says close.
    const id2 = await clients[0]!.submit('wait', {});
    await waitFor('add 2', () => added.find((t) => t.id === id2));
    let closed = false;
    w.on('close', () => (closed = true));
    await w.close();
    expect(closed).toBe(true);
    expect(deleted.find((t) => t.id === id2)).toMatchObject({ reason: 'TASK_STOPPED' });
    expect(await shared.ping()).toBe('PONG');
  });
});
