/**
 * Redis restarted (with AOF, so data survives) under a worker and its distributor:
 * a state_optional task keeps running and ends END in its first attempt; a normal task is stopped,
 * requeued and ends END in a later attempt.
 */
import { RedisServer } from '../helpers';
import { Cluster } from './cluster';

describe('Redis restart under a worker', () => {
  let server: RedisServer;
  let cluster: Cluster;
  beforeAll(async () => {
    server = await RedisServer.start({ aof: true });
    cluster = new Cluster({ label: 'rrestart', workers: 1, redisUrl: server.url });
    await cluster.start();
  });
  afterAll(async () => {
    await cluster?.stop();
    await server?.stopProcess();
  });

  test('state_optional carries on; a normal task is stopped and requeued; both end END', async () => {
    const optional = await cluster.client.submit('sleep', { ms: 3000 }, { state_optional: true });
    const normal = await cluster.client.submit('sleep', { ms: 3000 });
    await cluster.waitState(optional, (r) => r.state === 'RUNNING', 'optional RUNNING');
    await cluster.waitState(normal, (r) => r.state === 'RUNNING', 'normal RUNNING');
    const w = cluster.worker('w1');
    await server.restart();
    await w.waitForLog('Redis connection lost');
    await w.waitForLog('Redis connection back');
    const o = await cluster.client.wait(optional, { timeoutMs: 20000 });
    const n = await cluster.client.wait(normal, { timeoutMs: 20000 });
    expect(o.state).toBe('END');
    expect(o.attempts).toBe(1);
    expect(o.completions).toBe(1);
    expect(n.state).toBe('END');
    expect(n.attempts).toBeGreaterThanOrEqual(2);
    expect(n.completions).toBe(1);
    expect((n.result as { attempt: number }).attempt).toBe(n.attempts);
    // The stop was not a stall: the worker stopped it on purpose.
    expect(n.stalls).toBe(0);
  });
});
