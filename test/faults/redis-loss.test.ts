/**
 * Redis lost silently (the redis-server process frozen with SIGSTOP: connections stay open, no
 * replies): every command is bounded, so worker and distributor notice within
 * health.interval_ms + redis.command_timeout_ms; the worker keeps a state_optional task running
 * and stops the other, which is requeued once Redis is back. The distributor pulls and requeues
 * nothing meanwhile, and resumes by itself.
 */
import { RedisServer, waitFor, findLogs } from '../helpers';
import { Cluster } from './cluster';

const INTERVAL = 200;
const COMMAND_TIMEOUT = 500;

describe('Redis hangs (silent partition)', () => {
  let server: RedisServer;
  let cluster: Cluster;
  beforeAll(async () => {
    server = await RedisServer.start({ aof: false });
    const redisOpts = { redis: { command_timeout_ms: COMMAND_TIMEOUT } };
    cluster = new Cluster({ label: 'rloss', workers: 1, redisUrl: server.url, distributor: redisOpts, worker: redisOpts });
    // Cluster sets redis.url/prefix itself; the timeout is merged below.
    await cluster.start();
  });
  afterAll(async () => {
    server?.proc?.kill('SIGCONT');
    await cluster?.stop();
    await server?.stopProcess();
  });

  test('detected within interval + command timeout; state_optional survives; the rest is requeued; all resume', async () => {
    const optional = await cluster.client.submit('sleep', { ms: 2500 }, { state_optional: true });
    const normal = await cluster.client.submit('sleep', { ms: 2500 });
    await cluster.waitState(optional, (r) => r.state === 'RUNNING', 'optional RUNNING');
    await cluster.waitState(normal, (r) => r.state === 'RUNNING', 'normal RUNNING');
    const w = cluster.worker('w1');
    const d = cluster.distributors[0]!;
    server.proc!.kill('SIGSTOP');
    const frozenAt = Date.now();
    await w.waitForLog('Redis connection lost', {}, 5000);
    const workerNoticed = Date.now() - frozenAt;
    await d.waitForLog('Redis connection lost: not pulling, not requeueing until it is back', {}, 5000);
    console.log(`silent Redis hang noticed by the worker after ${workerNoticed} ms (bound ${INTERVAL + COMMAND_TIMEOUT} ms + scheduling)`);
    expect(workerNoticed).toBeLessThan(INTERVAL + COMMAND_TIMEOUT + 1000);
    await w.waitForLog('aborting task', { task: /^\S+$/, reason: 'the worker lost its Redis connection' }, 3000);
    expect(findLogs(w.output, 'aborting task', { task: new RegExp(`^${optional}`) })).toEqual([]);
    const lossAt = d.logs.findIndex((l) => l.msg.startsWith('Redis connection lost: not pulling'));
    server.proc!.kill('SIGCONT');
    await w.waitForLog('Redis connection back', {}, 10000);
    await waitFor('the distributor to see Redis again', () => d.logs.slice(lossAt).some((l) => l.msg === 'Redis connection up'), 10000);
    // While Redis was gone the distributor requeued nothing.
    const since = d.logs.slice(lossAt);
    const outage = since.slice(
      0,
      since.findIndex((l) => l.msg === 'Redis connection up'),
    );
    expect(outage.filter((l) => JSON.stringify(l).includes('task requeued'))).toEqual([]);
    const o = await cluster.client.wait(optional, { timeoutMs: 20000 });
    const n = await cluster.client.wait(normal, { timeoutMs: 20000 });
    expect(o.state).toBe('END');
    expect(o.attempts).toBe(1);
    expect(n.state).toBe('END');
    expect(n.attempts).toBe(2);
    expect(n.completions).toBe(1);
    // The distributor resumed pulling by itself.
    const later = await cluster.client.submit('echo', { later: true });
    expect((await cluster.client.wait(later, { timeoutMs: 10000 })).result).toEqual({ later: true });
  });
});
