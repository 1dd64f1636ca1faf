/**
 * Record lifecycle details: clean_end deletes the record after END (and `wait` still reports END),
 * priority orders runnable tasks, and a worker held as down comes back once the flag expires.
 */
import { Keys } from '@taskmesh/common/internal';
import { redis, waitFor } from './helpers';
import { Cluster } from './faults/cluster';

describe('record lifecycle', () => {
  const cluster = new Cluster({ label: 'life', workers: 1, worker: { concurrency: 1 } });
  const r = redis();
  beforeAll(() => cluster.start());
  afterAll(async () => {
    await cluster.stop();
    r.disconnect();
  });

  test('clean_end: the record is deleted after END; wait still resolves END', async () => {
    const keys = new Keys(cluster.prefix);
    const id = await cluster.client.submit('sleep', { ms: 300 }, { clean_end: true });
    const rec = await cluster.client.wait(id, { timeoutMs: 10000 });
    expect(rec.state).toBe('END');
    await waitFor('record deleted', async () => (await r.exists(keys.task(id))) === 0 && (await r.sismember(keys.tasks, id)) === 0, 5000);
  });

  test('higher priority runs first among QUEUED tasks', async () => {
    // Occupy the single slot, then queue low before high.
    const blocker = await cluster.client.submit('sleep', { ms: 2000 });
    await cluster.waitState(blocker, (x) => x.state === 'RUNNING', 'blocker RUNNING');
    const low = await Promise.all([1, 2, 3].map((i) => cluster.client.submit('echo', { low: i }, { priority: -5 })));
    const high = await cluster.client.submit('echo', { high: true }, { priority: 10 });
    const all = await Promise.all([...low, high].map((id) => cluster.client.wait(id, { timeoutMs: 10000 })));
    const h = all[3]!;
    for (const l of all.slice(0, 3)) expect(h.started_at!).toBeLessThan(l.started_at!);
    // Equal priority keeps FIFO order.
    expect(all[0]!.started_at!).toBeLessThanOrEqual(all[1]!.started_at!);
    expect(all[1]!.started_at!).toBeLessThanOrEqual(all[2]!.started_at!);
  });

  test('a worker found down is held for watch.stale_ms, then gets tasks again', async () => {
    const w = cluster.worker('w1');
    w.signal('SIGKILL');
    await w.exited;
    const keys = new Keys(cluster.prefix);
    const ttl = await waitFor(
      'down flag',
      async () => {
        const ms = await r.pttl(keys.workerDown('w1'));
        return ms > 0 ? ms : null;
      },
      5000,
    );
    const flagEnds = Date.now() + ttl;
    cluster.startWorker('w1');
    await cluster.connected('w1');
    const id = await cluster.client.submit('echo', { back: true });
    const rec = await cluster.client.wait(id, { timeoutMs: 15000 });
    expect(rec.state).toBe('END');
    expect(rec.worker).toBe('w1');
    // It ran only after the flag had expired.
    expect(rec.started_at!).toBeGreaterThanOrEqual(flagEnds - 50);
  });
});
