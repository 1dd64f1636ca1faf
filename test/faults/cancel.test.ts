/**
 * Cancellation is durable and routed: `taskmesh cancel` from a separate process aborts the
 * running function within a second, also while the owning worker is cut off from its distributor.
 */
import { Keys } from '@taskmesh/common/internal';
import { clientConfig, redis, runBin, waitFor, writeConfig } from '../helpers';
import { Cluster } from './cluster';

describe('cancel', () => {
  const cluster = new Cluster({ label: 'cancel', workers: 1 });
  let cfg: string;
  beforeAll(async () => {
    await cluster.start();
    cfg = writeConfig(cluster.dir, 'cli', clientConfig(cluster.prefix));
  });
  afterAll(() => cluster.stop());

  test('a RUNNING task cancelled from another process sees the abort within 1 s and ends CANCELLED', async () => {
    const id = await cluster.client.submit('sleep', { ms: 30000 });
    const running = await cluster.waitState(id, (r) => r.state === 'RUNNING', 'RUNNING');
    await cluster.functionStarted(running.worker!, id);
    // The moment the cancel is recorded in Redis is when the cancel script publishes it.
    const sub = redis();
    let requestedAt = 0;
    sub.on('message', (_ch: string, msg: string) => {
      if (msg === `cancel ${id}`) requestedAt = Date.now();
    });
    await sub.subscribe(new Keys(cluster.prefix).channel);
    try {
      const out = await runBin('taskmesh', ['cancel', id, '--config', cfg]);
      expect(out.code).toBe(0);
      await waitFor('the cancel to be published', () => requestedAt, 5000);
    } finally {
      sub.disconnect();
    }
    const end = await cluster.waitState(id, (r) => r.state === 'CANCELLED', 'CANCELLED', 5000);
    // ended_at is written by the worker after its function saw ctx.signal abort; the error is
    // the abort reason the function received.
    expect(end.ended_at! - requestedAt).toBeLessThan(1000);
    expect(end.error).toBe(`task ${id} was cancelled by a client`);
    expect(end.completions).toBe(0);
  });

  test('a QUEUED task becomes CANCELLED without running', async () => {
    const id = await cluster.client.submit('nobody-runs-this', {});
    expect(await cluster.client.cancel(id)).toBe('CANCELLED');
    const r = await cluster.record(id);
    expect(r.state).toBe('CANCELLED');
    expect(r.attempts).toBe(0);
  });

  test('the cancel reaches the worker through Redis while its distributor is gone', async () => {
    const id = await cluster.client.submit('sleep', { ms: 30000 });
    const running = await cluster.waitState(id, (r) => r.state === 'RUNNING', 'RUNNING');
    await cluster.functionStarted(running.worker!, id);
    const d = cluster.distributors[0]!;
    d.signal('SIGKILL');
    await d.exited;
    await cluster.worker('w1').waitForLog('distributor connection closed');
    const requestedAt = Date.now();
    expect(await cluster.client.cancel(id)).toBe('RUNNING');
    const end = await cluster.waitState(id, (r) => r.state === 'CANCELLED', 'CANCELLED', 5000);
    // No distributor to route it: the worker's next heartbeat (every 200 ms here) finds the flag.
    expect(end.ended_at! - requestedAt).toBeLessThan(1000);
    expect(end.error).toBe(`task ${id} was cancelled by a client`);
  });
});
