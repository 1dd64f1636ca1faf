/**
 * SIGTERM: a worker drains (running tasks get shutdown_grace_ms, the rest are stopped and
 * requeued) and exits 0; a distributor stops pulling, deregisters and exits 0.
 */
import { Keys } from '@taskmesh/common/internal';
import { redis } from '../helpers';
import { Cluster } from './cluster';

describe('graceful shutdown', () => {
  const cluster = new Cluster({ label: 'shutdown', workers: 1, worker: { shutdown_grace_ms: 1500 } });
  const r = redis();
  beforeAll(() => cluster.start());
  afterAll(async () => {
    await cluster.stop();
    r.disconnect();
  });

  test('worker SIGTERM: a short task finishes, a long one is stopped and requeued elsewhere; exit 0', async () => {
    // Both land on w1, the only worker; w2 joins afterwards to take over what w1 gives back.
    const short = await cluster.client.submit('sleep', { ms: 600 });
    const long = await cluster.client.submit('sleep', { ms: 5000 });
    await cluster.functionStarted('w1', short);
    await cluster.functionStarted('w1', long);
    cluster.startWorker('w2');
    await cluster.connected('w2');
    const victimId = 'w1';
    const victim = cluster.worker(victimId);
    victim.signal('SIGTERM');
    const exit = await victim.exited;
    expect(exit.code).toBe(0);
    const s = await cluster.client.wait(short, { timeoutMs: 10000 });
    expect(s).toMatchObject({ state: 'END', attempts: 1, worker: 'w1' });
    const l = await cluster.client.wait(long, { timeoutMs: 20000 });
    expect(l.state).toBe('END');
    expect(l.attempts).toBe(2);
    expect(l.stalls).toBe(0);
    expect(l.worker).toBe('w2');
    const keys = new Keys(cluster.prefix);
    expect(await r.sismember(keys.workers, victimId)).toBe(0);
    expect(await r.exists(keys.worker(victimId))).toBe(0);
  });

  test('worker SIGTERM with a function that ignores its signal: recorded STOPPED, not a stall', async () => {
    const id = await cluster.client.submit('stubborn', { ms: 6000 }, { max_stalls: 1 });
    const first = await cluster.waitState(id, (x) => x.state === 'RUNNING', 'RUNNING');
    const victim = cluster.worker(first.worker!);
    victim.signal('SIGTERM');
    expect((await victim.exited).code).toBe(0);
    // With max_stalls 1 a stall would have FAILED it at once.
    const back = await cluster.waitState(id, (x) => x.state !== 'RUNNING', 'given back', 10000);
    expect(['STOPPED', 'QUEUED']).toContain(back.state);
    expect(back.stalls).toBe(0);
    cluster.startWorker('w-new');
    const again = await cluster.waitState(id, (x) => x.state === 'RUNNING' && x.epoch > first.epoch, 'requeued run', 15000);
    expect(again.worker).toBe('w-new');
    expect(again.stalls).toBe(0);
  });

  test('distributor SIGTERM exits 0 and deregisters', async () => {
    const d = cluster.distributors[0]!;
    const keys = new Keys(cluster.prefix);
    const id = `d-${cluster.ports[0]}`;
    expect(await r.sismember(keys.distributors, id)).toBe(1);
    d.signal('SIGTERM');
    expect((await d.exited).code).toBe(0);
    expect(await r.sismember(keys.distributors, id)).toBe(0);
    expect(await r.exists(keys.distributor(id))).toBe(0);
  });
});
