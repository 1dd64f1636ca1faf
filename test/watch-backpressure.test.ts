/**
 * The worker's watch path in one process, against a stub channel whose socket we can fill: how a
 * synchronous loop's events leave, and what a watcher that falls behind gets (docs/protocol.md,
 * "Backpressure"). The end-to-end behaviour (real TLS, real processes) is in watch*.test.ts.
 */
import { EventEmitter } from 'node:events';
import type { TaskEvent } from '@taskmesh/common';
// The worker package has no internal entry point yet; these classes are not part of its API.
import { EventLog } from '../packages/worker/dist/context';
import { WatchHub } from '../packages/worker/dist/watch-hub';
import { waitFor } from './helpers';

const MAX = 1 << 20;
const log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** A Channel as the hub sees it: `buffered` is what we say it is; frames are recorded with the loop index at the time. */
class StubChannel extends EventEmitter {
  readonly peerId = 'stub-watcher';
  open = true;
  buffered = 0;
  closedWith: number | undefined;
  readonly sent: Array<{ at: number; text: string }> = [];
  loopIndex = -1;
  readonly ws = { send: (text: string): void => void this.sent.push({ at: this.loopIndex, text }) };
  startHealth(): void {}
  close(code: number): void {
    this.closedWith = code;
    this.open = false;
  }
  /** Every event received, in order, from `events`, `event` and `batch` frames alike. */
  events(): TaskEvent[] {
    const out: TaskEvent[] = [];
    const take = (f: { type: string; events?: TaskEvent[]; event?: TaskEvent; frames?: unknown[] }): void => {
      if (f.type === 'batch') for (const g of f.frames as (typeof f)[]) take(g);
      else if (f.type === 'events') out.push(...f.events!);
      else if (f.type === 'event') out.push(f.event!);
    };
    for (const s of this.sent) take(JSON.parse(s.text) as Parameters<typeof take>[0]);
    return out;
  }
}

function setup(): { hub: WatchHub; ch: StubChannel; run: (id: string) => EventLog } {
  const hub = new WatchHub({ log: log as never, maxMessageBytes: MAX, healthIntervalMs: 60000 });
  const ch = new StubChannel();
  hub.attach(ch as never);
  const run = (id: string): EventLog => {
    const events = new EventLog(id, 'job', 1, 1000, (e) => hub.publish(e));
    events.push('state', { state: 'RUNNING' });
    return events;
  };
  return { hub, ch, run };
}

const watch = (ch: StubChannel, task: string, batch = true): void => void ch.emit('message', { type: 'watch', sub: 's1', task, batch });

describe('the worker watch path (in process)', () => {
  test('a synchronous loop: the first events go out while it runs, every event arrives, in events frames', async () => {
    const { hub, ch, run } = setup();
    const events = run('loop');
    watch(ch, 'loop');
    const t0 = performance.now();
    let i = 0;
    // Long enough (at least 5 ms) for the 0.2 ms rule to fire inside the loop on a slow machine.
    while (i < 3000 || performance.now() - t0 < 5) {
      ch.loopIndex = ++i;
      events.progress(i, null, null);
      // After a write the socket is busy until the event loop turns, as a TLS socket is.
      if (ch.sent.length > 0) ch.buffered = 1;
    }
    ch.loopIndex = -1;
    events.push('state', { state: 'END', result: null });
    ch.buffered = 0;
    await waitFor('the rest', () => ch.events().at(-1)?.state === 'END');
    expect(ch.sent[0]!.at).toBeGreaterThan(0); // written from inside the loop
    expect(ch.sent[0]!.at).toBeLessThan(i);
    const got = ch.events();
    expect(got.map((e) => e.seq)).toEqual(Array.from({ length: i + 2 }, (_, k) => k + 1));
    expect(ch.sent.some((s) => s.text.includes('"type":"events"'))).toBe(true);
    expect(ch.sent.some((s) => s.text.includes('"type":"event",'))).toBe(false);
    hub.close();
  });

  test('a watcher that keeps sending but never reads its replies is closed with 4009, not queued for without end', () => {
    const { hub, ch } = setup();
    ch.buffered = MAX; // it reads nothing: the socket stays full
    let sent = 0;
    while (ch.closedWith === undefined && sent < 10000) ch.emit('message', { type: 'unwatch', sub: `nope-${++sent}` });
    expect(ch.closedWith).toBe(4009);
    expect(sent).toBeGreaterThan(1000);
    expect(sent).toBeLessThan(10000);
    hub.close();
  });

  test('without batch, one event frame per event, the same events', async () => {
    const { hub, ch, run } = setup();
    const events = run('single');
    watch(ch, 'single', false);
    for (let i = 1; i <= 50; i++) events.progress(i, 50, `m${i}`);
    events.push('state', { state: 'END', result: 1 });
    await waitFor('the end', () => ch.events().at(-1)?.state === 'END');
    expect(ch.events().map((e) => e.seq)).toEqual(Array.from({ length: 52 }, (_, k) => k + 1));
    expect(ch.sent.every((s) => !s.text.includes('"type":"events"'))).toBe(true);
    hub.close();
  });

  test('a watcher that falls more than the buffer behind on progress gets one gap with the exact count', async () => {
    const { hub, ch, run } = setup();
    const events = run('slow');
    watch(ch, 'slow');
    await waitFor('the first event', () => ch.events().length === 1);
    ch.buffered = MAX; // the socket is full: nothing is written
    for (let i = 1; i <= 1500; i++) events.progress(i, 1500, null);
    ch.buffered = 0;
    events.push('state', { state: 'END', result: null });
    await waitFor('the end', () => ch.events().at(-1)?.state === 'END');
    const got = ch.events();
    // seq 2..1501 are progress; the buffer keeps the last 1000 events (503..1502) when END is pushed.
    expect(got[1]).toMatchObject({ type: 'gap', seq: 2, lost: 501 });
    expect(got[2]).toMatchObject({ seq: 503, type: 'progress' });
    expect(got.slice(2).map((e) => e.seq)).toEqual(Array.from({ length: 1000 }, (_, k) => k + 503));
    expect(ch.closedWith).toBeUndefined();
    hub.close();
  });

  test('a watcher that would lose a log line is closed with 4009 instead', async () => {
    const { hub, ch, run } = setup();
    const events = run('logs');
    watch(ch, 'logs');
    await waitFor('the first event', () => ch.events().length === 1);
    ch.buffered = MAX;
    for (let i = 1; i <= 1500; i++) events.log(`line ${i}`, 'info');
    ch.buffered = 0;
    events.push('state', { state: 'END', result: null });
    await waitFor('the close', () => ch.closedWith !== undefined);
    expect(ch.closedWith).toBe(4009);
    expect(ch.events().filter((e) => e.type === 'gap')).toEqual([]);
    hub.close();
  });

  test('with nobody watching, nothing is written', () => {
    const { hub, ch, run } = setup();
    const events = run('alone');
    for (let i = 1; i <= 2000; i++) events.progress(i, 2000, null);
    events.push('state', { state: 'END', result: null });
    expect(ch.sent).toEqual([]);
    hub.close();
  });
});
