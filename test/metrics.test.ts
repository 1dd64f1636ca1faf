/**
 * Prometheus metrics (issue 13): the real bins serve /metrics on metrics.host:metrics.port, and
 * the families change as tasks run: ends, retries and run time on the worker; queue wait,
 * requeues, dead envelopes, refused connections and the queue depths on the distributor; the
 * default process metrics (event-loop lag included) on both. Bad metrics.* values are config
 * errors naming the key.
 */
import { connect as tlsConnect } from 'node:tls';
import { TaskClient, loadConfig } from '@taskmesh/common';
import {
  cleanPrefix,
  clientConfig,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  redis,
  runBin,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type Proc,
} from './helpers';

/** One scrape, as series text (`name{labels}`) -> value, plus the raw text for family checks. */
interface Scrape {
  text: string;
  values: Map<string, number>;
}

async function scrape(port: number): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics on ${port}: ${res.status}`);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    values.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return { text, values };
}

/** The value of a series whose labels include all of `labels` (summed over the rest), 0 if none. */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [series, v] of s.values) {
    const brace = series.indexOf('{');
    if ((brace === -1 ? series : series.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, want]) => series.includes(`${k}="${want}"`))) sum += v;
  }
  return sum;
}

const hasFamily = (s: Scrape, name: string): boolean => s.text.includes(`# TYPE ${name} `);

describe('Prometheus metrics', () => {
  const prefix = randomPrefix('metrics');
  const dir = tmpDir('metrics');
  const procs: Proc[] = [];
  let client: TaskClient;
  let port: number;
  let dMetrics: number;
  let wMetrics: number;

  beforeAll(async () => {
    port = await freePort();
    dMetrics = await freePort();
    const d = spawnBin('distributor', ['--config', writeConfig(dir, 'd', distributorConfig(prefix, port, { metrics: { port: dMetrics } }))], {}, 'distributor');
    procs.push(d);
    // Port 0: any free port, which the worker logs.
    const w = spawnBin(
      'worker',
      [
        '--config',
        writeConfig(dir, 'w', workerConfig(prefix, [port], { id: 'metrics-w1', concurrency: 4, metrics: { host: '127.0.0.1', port: 0 } })),
        '--tasks',
        FIXTURE_TASKS,
      ],
      {},
      'worker',
    );
    procs.push(w);
    await d.waitForLog('worker connected', { worker: 'metrics-w1' });
    const m = await w.waitForLog('metrics endpoint listening', { port: /^\d+$/ });
    wMetrics = Number(m.port);
    client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await client?.close();
    await cleanPrefix(prefix);
  });

  test('both roles serve the families, and they move as tasks run', async () => {
    const d0 = await scrape(dMetrics);
    const w0 = await scrape(wMetrics);
    for (const f of [
      'taskmesh_tasks',
      'taskmesh_intake_depth',
      'taskmesh_ready_depth',
      'taskmesh_dead_list_length',
      'taskmesh_queue_wait_seconds',
      'taskmesh_requeues_total',
      'taskmesh_stalls_total',
      'taskmesh_dead_envelopes_total',
      'taskmesh_fenced_writes_refused_total',
      'taskmesh_refused_connections_total',
      'taskmesh_connected_peers',
      'taskmesh_heartbeat_age_seconds',
      'nodejs_eventloop_lag_seconds',
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
    ]) {
      expect([f, hasFamily(d0, f)]).toEqual([f, true]);
    }
    for (const f of [
      'taskmesh_attempt_ends_total',
      'taskmesh_run_seconds',
      'taskmesh_retries_total',
      'taskmesh_fenced_writes_refused_total',
      'taskmesh_connected_peers',
      'taskmesh_heartbeat_age_seconds',
      'taskmesh_concurrency',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect([f, hasFamily(w0, f)]).toEqual([f, true]);
    }
    expect(d0.text).toMatch(/role="distributor"/);
    expect(w0.text).toMatch(/role="worker"/);
    expect(value(d0, 'taskmesh_connected_peers', { peer_role: 'worker' })).toBe(1);
    expect(value(w0, 'taskmesh_connected_peers', { peer_role: 'distributor' })).toBe(1);
    expect(value(w0, 'taskmesh_concurrency')).toBe(4);

    // Three that end, one that fails for good, one that throws once and is requeued, one nobody runs.
    const echo = await Promise.all([1, 2, 3].map((i) => client.submit('echo', { i })));
    const failed = await client.submit('fail', { message: 'metrics test failure' }, { max_attempts: 1 });
    const flaky = await client.submit('flaky', { succeedOn: 2 }, { max_attempts: 3 });
    await client.submit('nobody-has-this', {});
    for (const id of echo) expect((await client.wait(id, { timeoutMs: 15000 })).state).toBe('END');
    expect((await client.wait(failed, { timeoutMs: 15000 })).state).toBe('FAILED');
    expect((await client.wait(flaky, { timeoutMs: 15000 })).state).toBe('END');

    // An envelope that is not JSON is dead-lettered; a TLS client without a certificate is refused.
    const r = redis();
    await r.lpush(`${prefix}new-task`, 'not json at all');
    r.disconnect();
    await new Promise<void>((resolve) => {
      const sock = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
    });

    // Scrape-time values are cached for a second: poll until the new ones show.
    const w1 = await waitFor('worker metrics to move', async () => {
      const s = await scrape(wMetrics);
      return value(s, 'taskmesh_attempt_ends_total', { name: 'flaky', state: 'END' }) >= 1 ? s : null;
    });
    expect(
      value(w1, 'taskmesh_attempt_ends_total', { name: 'echo', state: 'END' }) - value(w0, 'taskmesh_attempt_ends_total', { name: 'echo', state: 'END' }),
    ).toBe(3);
    expect(value(w1, 'taskmesh_attempt_ends_total', { name: 'fail', state: 'FAILED' })).toBe(1);
    expect(value(w1, 'taskmesh_retries_total', { name: 'flaky' })).toBe(1);
    expect(value(w1, 'taskmesh_run_seconds_count', { name: 'echo', outcome: 'END' })).toBe(3);
    expect(value(w1, 'taskmesh_run_seconds_count', { name: 'flaky', outcome: 'ERROR' })).toBe(1);
    expect(value(w1, 'taskmesh_heartbeat_age_seconds')).toBeLessThan(5);

    const d1 = await waitFor('distributor metrics to move', async () => {
      const s = await scrape(dMetrics);
      const moved =
        value(s, 'taskmesh_dead_envelopes_total') >= 1 &&
        value(s, 'taskmesh_refused_connections_total') >= 1 &&
        value(s, 'taskmesh_ready_depth', { name: 'nobody-has-this' }) === 1;
      return moved ? s : null;
    });
    // 3 echo + 1 fail + 2 flaky attempts started.
    expect(value(d1, 'taskmesh_queue_wait_seconds_count') - value(d0, 'taskmesh_queue_wait_seconds_count')).toBe(6);
    expect(value(d1, 'taskmesh_queue_wait_seconds_count', { name: 'echo' })).toBe(3);
    expect(value(d1, 'taskmesh_requeues_total', { cause: 'stopped', result: 'requeued' })).toBe(1);
    expect(value(d1, 'taskmesh_dead_list_length')).toBeGreaterThanOrEqual(1);
    expect(value(d1, 'taskmesh_tasks', { state: 'QUEUED', name: 'nobody-has-this' })).toBe(1);
    expect(value(d1, 'taskmesh_intake_depth')).toBe(0);
    expect(value(d1, 'taskmesh_heartbeat_age_seconds')).toBeLessThan(5);
    expect(value(d1, 'taskmesh_stalls_total')).toBe(0);
    expect(value(d1, 'taskmesh_fenced_writes_refused_total')).toBe(0);

    // Anything but GET /metrics is not served.
    expect((await fetch(`http://127.0.0.1:${dMetrics}/`)).status).toBe(404);
  });

  test('bad metrics.* values are config errors naming the key (exit 2)', async () => {
    const bad = await runBin('distributor', ['--config', writeConfig(dir, 'd-bad', distributorConfig(prefix, port, { metrics: { port: 70000 } }))], {}, 15000);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/metrics\.port/);
    const badHost = await runBin(
      'worker',
      ['--config', writeConfig(dir, 'w-bad', workerConfig(prefix, [port], { metrics: { host: '' } })), '--tasks', FIXTURE_TASKS],
      {},
      15000,
    );
    expect(badHost.code).toBe(2);
    expect(badHost.stderr).toMatch(/metrics\.host/);
  });
});
