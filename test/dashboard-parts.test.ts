/**
 * The dashboard's parts without a browser: what the Redis snapshot reads (real Redis, a random
 * prefix), how watcher events fold into live rows, what the event stream tells open pages, and
 * the request checks behind cancel and retry.
 */
import { get as httpGet, type IncomingMessage } from 'node:http';
import { loadConfig, type TaskEvent } from '@taskmesh/common';
import { Keys } from '@taskmesh/common/internal';
import { createDashboard, type Dashboard, type LiveTask } from '@taskmesh/dashboard';
import { ENDED_KEEP_MS, LiveTasks, SILENT_MS, SnapshotReader, authorize, hostAllowed, sameOrigin } from '@taskmesh/dashboard/internal';
import { certFiles, cleanPrefix, randomPrefix, redis, REDIS_URL, SHARE_KEY } from './helpers';

const ev = (task: string, attempt: number, seq: number, type: TaskEvent['type'], fields: Record<string, unknown> = {}): TaskEvent => ({
  task,
  name: 'steps',
  attempt,
  seq,
  ts: Date.now(),
  type,
  ...fields,
});

type LiveMessage = { tasks: LiveTask[]; removed: string[] };

/** A page's event stream, as EventSource reads it: every message so far, by event name. */
function openStream(url: string): Promise<{ messages: Array<{ event: string; data: unknown }>; live: () => LiveMessage[]; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(`${url}api/events`, (res) => {
      const messages: Array<{ event: string; data: unknown }> = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data !== undefined) messages.push({ event, data: JSON.parse(data) });
        }
      });
      res.on('error', () => undefined);
      resolve({
        messages,
        live: () => messages.filter((m) => m.event === 'live').map((m) => m.data as LiveMessage),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

describe('dashboard parts', () => {
  describe('SnapshotReader', () => {
    const prefix = randomPrefix('dashsnap');
    const keys = new Keys(prefix);
    const r = redis();
    afterAll(async () => {
      r.disconnect();
      await cleanPrefix(prefix);
    });

    test('workers, distributors, queue depths, tasks on workers, recent failures still failed, and the dead list', async () => {
      const now = Date.now();
      await r
        .multi()
        .sadd(keys.workers, 'w1')
        .hset(keys.worker('w1'), {
          id: 'w1',
          host: '127.0.0.1',
          port: '4100',
          tasks: '["a","b"]',
          concurrency: '4',
          running: '2',
          updated_at: String(now - 300),
        })
        .sadd(keys.distributors, 'd1')
        .hset(keys.distributor('d1'), { id: 'd1', host: '127.0.0.1', port: '5000', updated_at: String(now) })
        .lpush(keys.newTask, 'x', 'y')
        .zadd(keys.ready('a'), 1, 'q1', 2, 'q2', 3, 'q3')
        // A name no worker registers: found by SCAN, so a queue nobody serves is seen.
        .zadd(keys.ready('orphan'), 1, 'q4')
        .zadd(keys.delayed, now + 1000, 'q5')
        .sadd(keys.stopped, 's1')
        .sadd(keys.workerTasks('w1'), 't1', 't2')
        .hset(keys.task('t1'), { id: 't1', name: 'a', state: 'RUNNING', worker: 'w1', attempts: '1', started_at: String(now - 1000) })
        .hset(keys.task('t2'), { id: 't2', name: 'a', state: 'END', worker: 'w1', attempts: '1' })
        // A worker that is gone but still has tasks recorded against it (the `assigned` index).
        .sadd(keys.assigned, 'gone')
        .sadd(keys.workerTasks('gone'), 't3')
        .hset(keys.task('t3'), { id: 't3', name: 'b', state: 'RUNNING', worker: 'gone', attempts: '2', started_at: String(now - 5000) })
        .xadd(keys.completed, '*', 'id', 'f1', 'name', 'a', 'state', 'FAILED')
        .xadd(keys.completed, '*', 'id', 'e1', 'name', 'a', 'state', 'END')
        .xadd(keys.completed, '*', 'id', 'f2', 'name', 'b', 'state', 'CANCELLED')
        .xadd(keys.completed, '*', 'id', 'f3', 'name', 'a', 'state', 'FAILED')
        .hset(keys.task('f1'), { id: 'f1', name: 'a', state: 'FAILED', error: 'boom', attempts: '3', ended_at: String(now - 50) })
        .hset(keys.task('f2'), { id: 'f2', name: 'b', state: 'CANCELLED', error: 'cancelled by a client', attempts: '1', ended_at: String(now - 10) })
        // Retried since it failed: no longer a failure.
        .hset(keys.task('f3'), { id: 'f3', name: 'a', state: 'QUEUED', attempts: '1' })
        .lpush(keys.dead, JSON.stringify({ reason: 'not JSON', raw: 'z'.repeat(1000), at: now, distributor: 'd1' }), 'not even json')
        .exec();

      const s = await new SnapshotReader(r, keys, true).read();
      expect(s.prefix).toBe(prefix);
      expect(s.workers).toEqual([{ id: 'w1', host: '127.0.0.1', port: 4100, tasks: ['a', 'b'], concurrency: 4, running: 2, updatedAt: now - 300 }]);
      expect(s.distributors).toEqual([{ id: 'd1', host: '127.0.0.1', port: 5000, updatedAt: now }]);
      expect(s.queues).toEqual({
        intake: 2,
        delayed: 1,
        stopped: 1,
        ready: [
          { name: 'a', depth: 3 },
          { name: 'b', depth: 0 },
          { name: 'orphan', depth: 1 },
        ],
      });
      expect(s.assigned.map((a) => [a.id, a.state, a.worker, a.attempts])).toEqual([
        ['t3', 'RUNNING', 'gone', 2],
        ['t1', 'RUNNING', 'w1', 1],
      ]);
      expect(s.assignedComplete).toBe(true);
      // Newest first; END entries and tasks retried since are left out.
      expect(s.failures).toEqual([
        { id: 'f2', name: 'b', state: 'CANCELLED', error: 'cancelled by a client', attempts: 1, endedAt: now - 10 },
        { id: 'f1', name: 'a', state: 'FAILED', error: 'boom', attempts: 3, endedAt: now - 50 },
      ]);
      expect(s.dead.total).toBe(2);
      expect(s.dead.recent[0]).toEqual({ reason: '', at: null, distributor: '', raw: 'not even json' });
      expect(s.dead.recent[1]).toMatchObject({ reason: 'not JSON', at: now, distributor: 'd1' });
      expect(s.dead.recent[1]!.raw).toBe(`${'z'.repeat(300)}…`);
    });

    test('an empty mesh reads as empty, not as an error', async () => {
      const s = await new SnapshotReader(r, new Keys(randomPrefix('dashempty')), true).read();
      expect(s).toMatchObject({
        workers: [],
        distributors: [],
        assigned: [],
        failures: [],
        dead: { total: 0, recent: [] },
        queues: { intake: 0, delayed: 0, stopped: 0, ready: [] },
      });
    });
  });

  describe('LiveTasks', () => {
    afterEach(() => jest.useRealTimers());

    test('folds events into one row per task and hands out only what changed', () => {
      const live = new LiveTasks();
      live.apply(ev('t1', 1, 1, 'state', { state: 'RUNNING' }));
      live.apply(ev('t1', 1, 2, 'progress', { done: 3, total: 10, message: 'step 3' }));
      live.apply(ev('t1', 1, 3, 'log', { level: 'info', message: 'half-way' }));
      live.apply(ev('t1', 1, 4, 'event', { event: 'thumb', data: null }));
      const first = live.flush();
      expect(first.tasks).toEqual([
        expect.objectContaining({ id: 't1', attempt: 1, state: 'RUNNING', done: 3, total: 10, message: 'step 3', log: 'half-way', endedAt: null }),
      ]);
      expect(live.flush()).toEqual({ tasks: [], removed: [] });

      // An older attempt's late event changes nothing; a newer attempt starts over.
      live.apply(ev('t1', 2, 1, 'state', { state: 'RUNNING' }));
      live.apply(ev('t1', 1, 5, 'progress', { done: 9, total: 10 }));
      expect(live.flush().tasks).toEqual([expect.objectContaining({ id: 't1', attempt: 2, state: 'RUNNING', done: null, total: null })]);
    });

    test('an ended attempt keeps its final state for a while, then is removed', () => {
      jest.useFakeTimers({ now: 1_000_000 });
      const live = new LiveTasks();
      live.apply(ev('t1', 1, 1, 'state', { state: 'RUNNING' }));
      live.apply(ev('t1', 1, 2, 'state', { state: 'CANCELLED', error: 'cancelled by a client' }));
      expect(live.flush().tasks).toEqual([expect.objectContaining({ state: 'CANCELLED', error: 'cancelled by a client', endedAt: 1_000_000 })]);
      jest.setSystemTime(1_000_000 + ENDED_KEEP_MS - 1);
      expect(live.all()).toHaveLength(1);
      jest.setSystemTime(1_000_000 + ENDED_KEEP_MS + 1);
      expect(live.flush()).toEqual({ tasks: [], removed: ['t1'] });
      expect(live.all()).toEqual([]);
    });

    test('a silent row whose task is on no worker any more is LOST (its worker died: no final event will come)', () => {
      jest.useFakeTimers({ now: 2_000_000 });
      const live = new LiveTasks();
      live.apply(ev('gone', 1, 1, 'state', { state: 'RUNNING' }));
      live.apply(ev('here', 1, 1, 'state', { state: 'RUNNING' }));
      live.flush();
      // Not silent long enough yet: a task just assigned may not be on the index read a moment ago.
      live.reconcile(new Set(['here']));
      expect(live.flush().tasks).toEqual([]);
      jest.setSystemTime(2_000_000 + SILENT_MS + 1);
      live.reconcile(new Set(['here']));
      expect(live.flush().tasks).toEqual([expect.objectContaining({ id: 'gone', state: 'LOST' })]);
      expect(live.all().find((t) => t.id === 'here')).toMatchObject({ state: 'RUNNING', endedAt: null });
    });

    test('rows dropped by all() (a page connecting) are still handed out as removed by the next flush', () => {
      jest.useFakeTimers({ now: 3_000_000 });
      const live = new LiveTasks();
      for (const id of ['old', 'back']) {
        live.apply(ev(id, 1, 1, 'state', { state: 'RUNNING' }));
        live.apply(ev(id, 1, 2, 'state', { state: 'FAILED', error: 'boom' }));
      }
      live.flush();
      jest.setSystemTime(3_000_000 + ENDED_KEEP_MS + 1);
      expect(live.all()).toEqual([]);
      // `back` is retried before the flush: a row again (its new attempt), not a removal.
      live.apply(ev('back', 2, 1, 'state', { state: 'RUNNING' }));
      expect(live.flush()).toEqual({ tasks: [expect.objectContaining({ id: 'back', attempt: 2, state: 'RUNNING' })], removed: ['old'] });
      expect(live.flush()).toEqual({ tasks: [], removed: [] });
    });
  });

  describe('the event stream', () => {
    const prefix = randomPrefix('dashsse');
    let dashboard: Dashboard | undefined;
    afterAll(async () => {
      await dashboard?.close();
      jest.useRealTimers();
      await cleanPrefix(prefix);
    });
    /** waitFor's deadline reads the clock, which stands still here: this one counts real 25 ms waits instead. */
    async function until(what: string, fn: () => boolean): Promise<void> {
      for (let i = 0; !fn(); i++) {
        if (i >= 400) throw new Error(`timed out after 10 s waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }

    test('a row that another page connecting dropped is removed from the pages already open', async () => {
      // Only the clock and the dashboard's intervals are fake: the flush runs when the test says,
      // so the page connecting surely drops the row before any flush does. Sockets stay real.
      jest.useFakeTimers({
        now: Date.now(),
        doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout'],
      });
      const config = loadConfig('dashboard', {
        id: 'dash-sse',
        share_key: SHARE_KEY,
        ...certFiles('watcher'),
        redis: { url: REDIS_URL, prefix },
        dashboard: { port: 0 },
      });
      dashboard = await createDashboard(config, { flushMs: 100 });
      // No worker on this prefix: the rows are put in as the watcher would (a private field).
      const live = (dashboard as unknown as { live: LiveTasks }).live;
      const a = await openStream(dashboard.url);
      await until('page A connected', () => a.live().length > 0);
      live.apply(ev('t-old', 1, 1, 'state', { state: 'RUNNING' }));
      live.apply(ev('t-old', 1, 2, 'state', { state: 'END', result: null }));
      jest.advanceTimersByTime(100);
      await until('page A to get the row', () => a.live().some((m) => m.tasks.some((t) => t.id === 't-old' && t.state === 'END')));

      jest.setSystemTime(Date.now() + ENDED_KEEP_MS + 1000);
      const b = await openStream(dashboard.url);
      await until('page B connected', () => b.live().length > 0);
      expect(b.live()[0]!.tasks).toEqual([]);
      jest.advanceTimersByTime(100);
      await until('page A told to remove the row', () => a.live().some((m) => m.removed.includes('t-old')));
      a.close();
      b.close();
    });
  });

  describe('request checks', () => {
    const req = (headers: Record<string, string>, socket: Record<string, unknown> = {}): IncomingMessage => ({ headers, socket }) as unknown as IncomingMessage;
    const TOKEN = 'a-token-of-some-length';

    test('the token: none is 401, a wrong or malformed one 403, the right one passes', () => {
      expect(authorize(req({}), TOKEN)).toMatchObject({ ok: false, status: 401 });
      expect(authorize(req({ authorization: 'Bearer nope' }), TOKEN)).toMatchObject({ ok: false, status: 403 });
      expect(authorize(req({ authorization: `Bearer ${TOKEN}x` }), TOKEN)).toMatchObject({ ok: false, status: 403 });
      expect(authorize(req({ authorization: `Basic ${TOKEN}` }), TOKEN)).toMatchObject({ ok: false, status: 403 });
      expect(authorize(req({ authorization: `Bearer ${TOKEN}` }), TOKEN)).toEqual({ ok: true, by: 'token' });
      expect(authorize(req({ authorization: `bearer  ${TOKEN}` }), TOKEN)).toEqual({ ok: true, by: 'token' });
      // No token configured: no bearer is ever accepted.
      expect(authorize(req({ authorization: 'Bearer anything-at-all-here' }), null)).toMatchObject({ ok: false, status: 403 });
    });

    test('a client certificate counts only when TLS verified it', () => {
      expect(authorize(req({}, { encrypted: true, authorized: true }), null)).toEqual({ ok: true, by: 'certificate' });
      expect(authorize(req({}, { encrypted: true, authorized: false }), null)).toMatchObject({ ok: false, status: 401 });
    });

    test('a loopback page answers loopback names only; Origin must match Host', () => {
      expect(hostAllowed(req({ host: '127.0.0.1:7070' }), '127.0.0.1')).toBe(true);
      expect(hostAllowed(req({ host: 'localhost:7070' }), '127.0.0.1')).toBe(true);
      expect(hostAllowed(req({ host: '[::1]:7070' }), '::1')).toBe(true);
      expect(hostAllowed(req({ host: 'evil.example:7070' }), '127.0.0.1')).toBe(false);
      expect(hostAllowed(req({ host: '127.0.0.2:7070' }), '127.0.0.1')).toBe(true);
      // A name that merely starts like a loopback address is a rebinding attempt.
      expect(hostAllowed(req({ host: '127.attacker.example:7070' }), '127.0.0.1')).toBe(false);
      expect(hostAllowed(req({}), '127.0.0.1')).toBe(false);
      // Bound elsewhere on purpose: any name.
      expect(hostAllowed(req({ host: 'dash.internal:7070' }), '10.0.0.5')).toBe(true);
      expect(sameOrigin(req({ host: '127.0.0.1:7070' }))).toBe(true);
      expect(sameOrigin(req({ host: '127.0.0.1:7070', origin: 'http://127.0.0.1:7070' }))).toBe(true);
      expect(sameOrigin(req({ host: '127.0.0.1:7070', origin: 'http://evil.example' }))).toBe(false);
      expect(sameOrigin(req({ host: '127.0.0.1:7070', origin: 'null' }))).toBe(false);
    });
  });
});
