/**
 * The follower's decisions (packages/watcher/src/follow.ts) against a scripted worker link: what
 * a watcher yields when its link drops before any event came and the task ends meanwhile. With
 * real processes this is a watcher stalled under load that the worker drops for missed health
 * checks (an abrupt close discards what the socket still held); here the order is forced.
 */
import { join } from 'node:path';
import type { TaskEvent, TaskRecord, WatchSince } from '@taskmesh/common';
import { ROOT } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the follower is internal to the watcher package
const { TaskFollower } = require(join(ROOT, 'packages', 'watcher', 'dist', 'follow.js')) as typeof import('../packages/watcher/src/follow');

type Item = { kind: 'events'; events: TaskEvent[] } | { kind: 'end'; reason: 'ended' | 'not-here' | 'unwatched' } | { kind: 'drop'; reason: string };

const ID = 't-follow';
const ev = (seq: number, extra: Partial<TaskEvent> = {}): TaskEvent => ({
  task: ID,
  name: 'steps',
  attempt: 1,
  seq,
  ts: seq,
  type: 'progress',
  done: seq,
  total: 3,
  message: null,
  ...extra,
});
const EVENTS = [ev(1, { type: 'state', state: 'RUNNING' }), ev(2), ev(3), ev(4), ev(5, { type: 'state', state: 'END', result: { ok: true } })];

function record(state: string): TaskRecord {
  return {
    id: ID,
    name: 'steps',
    state,
    attempts: 1,
    worker: 'w1',
    result: state === 'END' ? { ok: true } : null,
    error: null,
    updated_at: 5,
    ended_at: state === 'END' ? 5 : null,
  } as unknown as TaskRecord;
}

/** A worker link whose n-th subscription gets what `script(n, since)` says. */
function core(states: () => string, script: (n: number, since: WatchSince | undefined) => Item[]) {
  const subs: Array<WatchSince | undefined> = [];
  const link = {
    watch(spec: { task: string; since?: WatchSince }, push: (it: Item) => void) {
      subs.push(spec.since);
      const items = script(subs.length, spec.since);
      setImmediate(() => items.forEach(push));
      return { id: `s${subs.length}`, close: () => undefined };
    },
  };
  return {
    subs,
    core: {
      pool: { delay: () => 0, get: () => link, connect: async () => undefined, noteDrop: () => undefined },
      readRecord: async () => record(states()),
      readWorker: async () => ({ host: '127.0.0.1', port: 1 }),
      pollMs: 10,
      recheckMs: 200,
    },
  };
}

async function follow(c: ReturnType<typeof core>['core']): Promise<TaskEvent[]> {
  const out: TaskEvent[] = [];
  const f = new TaskFollower(c as never, ID, (e) => out.push(e), { signal: new AbortController().signal });
  await f.run();
  return out;
}

describe('following a task whose link dropped before any event', () => {
  test('the task ended meanwhile: every event of the attempt comes from the worker that still holds them, not one state from the record', async () => {
    let state = 'RUNNING';
    const c = core(
      () => state,
      (n) => {
        if (n === 1) {
          state = 'END'; // it ends while this watcher's link is gone
          return [{ kind: 'drop', reason: 'missed health checks' }];
        }
        return [{ kind: 'events', events: EVENTS }];
      },
    );
    const events = await follow(c.core);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(events.at(-1)).toMatchObject({ type: 'state', state: 'END' });
    expect(c.subs).toEqual([undefined, undefined]);
  });

  test('the worker no longer holds the attempt: one state event from the record', async () => {
    let state = 'RUNNING';
    const c = core(
      () => state,
      (n) => {
        if (n === 1) {
          state = 'END';
          return [{ kind: 'drop', reason: 'missed health checks' }];
        }
        return [{ kind: 'end', reason: 'not-here' }];
      },
    );
    const events = await follow(c.core);
    expect(events).toEqual([expect.objectContaining({ seq: 1, type: 'state', state: 'END', result: { ok: true } })]);
  });

  test('a task that had already ended before the watch began: one state event from the record, no subscription', async () => {
    const c = core(
      () => 'END',
      () => [{ kind: 'events', events: EVENTS }],
    );
    const events = await follow(c.core);
    expect(events).toEqual([expect.objectContaining({ seq: 1, type: 'state', state: 'END' })]);
    expect(c.subs).toEqual([]);
  });
});

describe('following a task whose attempt ended as STOPPED while its record still says RUNNING', () => {
  test('the follower waits between looks instead of resubscribing at once', async () => {
    const stopped = [ev(1, { type: 'state', state: 'RUNNING' }), ev(2, { type: 'state', state: 'STOPPED', error: 'lost Redis' })];
    let state = 'RUNNING';
    const c = core(
      () => state,
      (n) => (n === 1 ? [{ kind: 'events', events: stopped }] : [{ kind: 'end', reason: 'ended' }]),
    );
    const ctrl = new AbortController();
    const out: TaskEvent[] = [];
    const f = new TaskFollower(c.core as never, ID, (e) => out.push(e), { signal: ctrl.signal });
    const running = f.run();
    // 300 ms with the record unchanged: at pollMs 10 that is a few dozen looks, not thousands.
    await new Promise((r) => setTimeout(r, 300));
    const looks = c.subs.length;
    state = 'END';
    await running;
    expect(looks).toBeGreaterThan(1);
    expect(looks).toBeLessThan(100);
    expect(out.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(out.at(-1)).toMatchObject({ type: 'state', state: 'END' });
  });
});
