/**
 * Live task events straight from the workers: the library, replay with `since`, many watchers,
 * refusals, and the `taskmesh-watch` bin. Real bins, real Redis, real TLS.
 */
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import type { TaskEvent } from '@taskmesh/common';
import { certFiles, runBin, spawnBin, waitFor, countLogs } from './helpers';
import { collect, expectOrdered, WatchCluster } from './watch-cluster';

describe('watch', () => {
  const c = new WatchCluster('watch', 1);
  beforeAll(() => c.start());
  afterAll(() => c.stop());

  test('progress arrives live, before the task ends, in (attempt, seq) order', async () => {
    const id = await c.client.submit('steps', { n: 10, ms: 100 });
    const events = await collect(c.watcher().watch(id));
    const rec = await c.client.status(id);
    expect(rec?.state).toBe('END');
    expect(events.map((e) => e.type)).toEqual(['state', ...Array(5).fill('progress'), 'log', ...Array(5).fill('progress'), 'event', 'state']);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    expect(events[0]).toMatchObject({ task: id, name: 'steps', attempt: 1, seq: 1, type: 'state', state: 'RUNNING' });
    expect(events[1]).toMatchObject({ type: 'progress', done: 1, total: 10, message: 'step 1' });
    expect(events.at(-1)).toMatchObject({ type: 'state', state: 'END', result: { n: 10, attempt: 1 } });
    // Live: the first progress event reached us well before the task's end was recorded.
    expect(rec!.ended_at! - events[1]!.at).toBeGreaterThan(500);
    expectOrdered(events);
  });

  test('since: resuming gives no gap and no duplicate; coming back too late gives a gap with the right count', async () => {
    // 1 RUNNING + 1500 progress: the buffer (1000) keeps seq 502..1501 while the task holds.
    const id = await c.client.submit('burst', { count: 1500, holdMs: 1500 });
    const w = c.watcher();
    const first: TaskEvent[] = [];
    for await (const e of w.watch(id)) {
      first.push(e);
      if (e.seq === 1200) break;
    }
    // A fresh watch without since starts with a gap: seq 1..501 are gone already.
    expect(first[0]).toMatchObject({ type: 'gap', seq: 1, lost: 501 });
    expect(first[1]).toMatchObject({ seq: 502, type: 'progress', done: 501 });

    const resumed = await collect(w.watch(id, { since: { attempt: 1, seq: 1200 } }));
    expect(resumed[0]).toMatchObject({ seq: 1201, type: 'progress', done: 1200 });
    expect(resumed.filter((e) => e.type === 'gap')).toEqual([]);
    expect(resumed.at(-1)).toMatchObject({ seq: 1502, type: 'state', state: 'END' });
    expect(resumed).toHaveLength(302);
    expectOrdered(resumed);

    const late = await collect(c.watcher().watch(id, { since: { attempt: 1, seq: 100 } }));
    // The worker keeps the ended attempt's last 1000 events (seq 503..1502): 101..502 are lost.
    expect(late[0]).toMatchObject({ type: 'gap', attempt: 1, seq: 101, lost: 402 });
    expect(late[1]).toMatchObject({ seq: 503 });
    expect(late.at(-1)).toMatchObject({ seq: 1502, state: 'END' });
    expectOrdered(late);
  });

  test('100 watchers on one task each see every event', async () => {
    // Long enough (about 5 s) that all 100 watchers, made in one loaded test process, subscribe
    // while it runs: one that first reads the record after the end rightly gets one state event.
    const id = await c.client.submit('steps', { n: 20, ms: 250, delay: 0 });
    const watchers = Array.from({ length: 100 }, () => c.watcher());
    const all = await Promise.all(watchers.map((w) => collect(w.watch(id))));
    const rec = await c.client.status(id);
    expect(rec?.state).toBe('END');
    // 100 TLS handshakes can stall the worker past its missed health checks on a loaded 2-core
    // machine, and then the task is rightly taken over and runs again: every attempt a watcher
    // saw starts at seq 1 with no gap, and the last one is whole.
    for (const events of all) {
      expectOrdered(events);
      expect(events.filter((e) => e.type === 'gap')).toEqual([]);
      for (let i = 0; i < events.length; i++) if (i === 0 || events[i]!.attempt !== events[i - 1]!.attempt) expect(events[i]!.seq).toBe(1);
      const last = events.filter((e) => e.attempt === rec!.attempts);
      expect(last.map((e) => e.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
      expect(last.at(-1)).toMatchObject({ state: 'END' });
    }
  });

  test('no certificate, another CA or a wrong share_key is refused, while a valid watcher gets events', async () => {
    const workerId = [...c.workers.keys()][0]!;
    const w = c.worker(workerId);
    const port = Number((await w.waitForLog('started')).watch_port);
    const id = await c.client.submit('steps', { n: 40, ms: 150 });
    const valid = collect(c.watcher().watch(id));

    // No client certificate: TLS refuses it before any frame.
    const noCert = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { ca: readFileSync(certFiles('watcher').ca), perMessageDeflate: false });
      ws.on('message', () => resolve('got a frame'));
      ws.on('error', (err) => resolve(`error: ${err.message}`));
      ws.on('close', (code) => resolve(`closed ${code}`));
    });
    expect(noCert).not.toBe('got a frame');
    await w.waitForLog('refused connection', { reason: /^client certificate refused/ });

    // A certificate from another CA (the watcher still trusts the worker's CA, so only its own cert is wrong).
    const otherCaCerts = { ...certFiles('worker', 'other'), ca: certFiles('watcher').ca };
    const refusedBefore = countLogs(w.output, 'refused connection');
    const otherCa = await collect(c.watcher({}, otherCaCerts).watch(id, { signal: AbortSignal.timeout(1500) })).catch((e: Error) => e);
    await waitFor('the other-CA watcher refused', () => countLogs(w.output, /^(refused connection|TLS handshake failed)$/) > refusedBefore);
    expect(Array.isArray(otherCa) ? otherCa.filter((e) => e.type !== 'state' || e.state !== 'END') : []).toEqual([]);

    const wrongKey = await collect(c.watcher({ share_key: 'not-the-key' }).watch(id, { signal: AbortSignal.timeout(1500) })).catch((e: Error) => e);
    await w.waitForLog('refused peer: wrong share_key');
    expect(Array.isArray(wrongKey) ? wrongKey.filter((e) => e.type !== 'state' || e.state !== 'END') : []).toEqual([]);

    const events = await valid;
    expect(events.filter((e) => e.type === 'progress')).toHaveLength(40);
    expect(events.at(-1)).toMatchObject({ state: 'END' });
  });

  test('taskmesh-watch --all picks up a task submitted after it started', async () => {
    const cfg = c.watcherConfigFile('watch-all');
    const p = spawnBin('watch', ['--config', cfg, '--json', '--all'], {}, 'taskmesh-watch');
    try {
      await p.waitForOutput(/watching worker /);
      const id = await c.client.submit('steps', { n: 5, ms: 50 });
      await p.waitForOutput(new RegExp(`"task":"${id}".*"state":"END"`));
      const mine = p.output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as TaskEvent)
        .filter((e) => e.task === id);
      expect(mine.map((e) => e.seq)).toEqual(Array.from({ length: 9 }, (_, i) => i + 1));
      const { code } = await p.exited;
      expect(code).toBe(0); // without --follow it leaves once every task it saw is terminal
    } finally {
      await p.stop();
    }
  });

  test('taskmesh-watch --json on a finished task prints its final state and exits 0', async () => {
    const id = await c.client.submit('echo', { hi: 1 });
    await c.client.wait(id, { timeoutMs: 10000 });
    const r = await runBin('watch', ['--config', c.watcherConfigFile('watch-json'), '--json', id]);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TaskEvent);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ task: id, name: 'echo', attempt: 1, type: 'state', state: 'END', result: { hi: 1 } });
    const unknown = await runBin('watch', ['--config', c.watcherConfigFile('watch-json'), '--json', 'no-such-task']);
    expect(unknown.code).toBe(3);
  });
});
