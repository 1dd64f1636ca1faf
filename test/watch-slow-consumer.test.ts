/**
 * A `watch()` loop slower than its task (docs/protocol.md, "A slow watch loop"): what waits for it
 * in the watcher is capped, the oldest progress events giving way to `gap` events first. First the
 * queue alone (in process, deterministic), then a real worker flooding a slow loop.
 */
import type { TaskEvent } from '@taskmesh/common';
import { WATCH_QUEUE_MAX } from '@taskmesh/watcher';
// The watcher package has no internal entry point; this class is not part of its API.
import { WatchQueue } from '../packages/watcher/dist/watch-queue';
import { expectOrdered, WatchCluster } from './watch-cluster';

const ev = (seq: number, type: TaskEvent['type'], fields: Record<string, unknown> = {}, attempt = 1): TaskEvent => ({
  task: 't1',
  name: 'job',
  attempt,
  seq,
  ts: 1000 + seq,
  type,
  ...fields,
});

/** Everything waiting, in order. */
async function drain(q: WatchQueue): Promise<TaskEvent[]> {
  const out: TaskEvent[] = [];
  while (q.size > 0) out.push((await q.shift())!);
  return out;
}

/** How many seqs an event stands for: a gap its `lost`, any other event one. */
const covers = (e: TaskEvent): number => (e.type === 'gap' ? Number(e.lost) : 1);

describe('WatchQueue (in process)', () => {
  test('over the cap, the oldest progress events go first, each run of them into one gap; state and log events stay', async () => {
    const q = new WatchQueue(5);
    q.push(ev(1, 'state', { state: 'RUNNING' }));
    for (let s = 2; s <= 10; s++) q.push(ev(s, 'progress', { done: s }));
    expect(q.size).toBe(5);
    q.push(ev(11, 'log', { message: 'half-way' }));
    for (let s = 12; s <= 20; s++) q.push(ev(s, 'progress', { done: s }));
    q.push(ev(21, 'state', { state: 'END' }));
    expect(q.size).toBe(5);
    const got = await drain(q);
    expect(got).toEqual([
      ev(1, 'state', { state: 'RUNNING' }),
      { task: 't1', name: 'job', attempt: 1, seq: 2, ts: 1002, type: 'gap', lost: 9 },
      ev(11, 'log', { message: 'half-way' }),
      { task: 't1', name: 'job', attempt: 1, seq: 12, ts: 1012, type: 'gap', lost: 9 },
      ev(21, 'state', { state: 'END' }),
    ]);
    expect(q.dropped).toBe(18);
    expectOrdered(got);
  });

  test('with no progress event waiting, the oldest events go anyway, still as gaps in order', async () => {
    const q = new WatchQueue(4);
    q.push(ev(1, 'state', { state: 'RUNNING' }));
    q.push(ev(2, 'progress', { done: 1 }));
    q.push(ev(3, 'progress', { done: 2 }));
    q.push(ev(4, 'log', { message: 'a' }));
    q.push(ev(5, 'progress', { done: 3 }));
    q.push(ev(6, 'progress', { done: 4 }));
    // [RUNNING, gap 2-3, log 4, gap 5-6]: the final state pushes the oldest event out.
    q.push(ev(7, 'state', { state: 'END' }));
    const got = await drain(q);
    expect(got).toEqual([
      expect.objectContaining({ type: 'gap', seq: 1, lost: 3 }),
      ev(4, 'log', { message: 'a' }),
      expect.objectContaining({ type: 'gap', seq: 5, lost: 2 }),
      ev(7, 'state', { state: 'END' }),
    ]);
    expectOrdered(got);
  });

  test("a gap from the worker absorbs the events dropped after it, and the worker's object is left alone", async () => {
    const q = new WatchQueue(2);
    const fromWorker = ev(1, 'gap', { lost: 5 });
    q.push(fromWorker);
    q.push(ev(6, 'progress', { done: 6 }));
    q.push(ev(7, 'progress', { done: 7 }));
    q.push(ev(8, 'log', { message: 'x' }));
    expect(await drain(q)).toEqual([expect.objectContaining({ type: 'gap', seq: 1, lost: 7 }), ev(8, 'log', { message: 'x' })]);
    expect(fromWorker.lost).toBe(5);
  });

  test('a waiting loop gets each event at once; close ends it after what waits', async () => {
    const q = new WatchQueue(2);
    const next = q.shift();
    q.push(ev(1, 'state', { state: 'RUNNING' }));
    expect(await next).toEqual(ev(1, 'state', { state: 'RUNNING' }));
    expect(q.size).toBe(0);
    q.push(ev(2, 'progress'));
    q.close();
    q.push(ev(3, 'progress'));
    expect(await q.shift()).toEqual(ev(2, 'progress'));
    expect(await q.shift()).toBeUndefined();
  });

  test('random mixes of events, attempts and reads: never over the cap, in order, every seq accounted for, kept events unchanged', async () => {
    let seed = 12345;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 20; round++) {
      const max = 2 + Math.floor(rand() * 40);
      const q = new WatchQueue(max);
      const sent: TaskEvent[] = [];
      const got: TaskEvent[] = [];
      let attempt = 1;
      let seq = 0;
      let peak = 0;
      for (let i = 0; i < 3000; i++) {
        const r = rand();
        if (r < 0.002) {
          attempt++; // a new attempt starts at seq 1
          seq = 0;
        }
        let e: TaskEvent;
        if (r > 0.995) {
          const lost = 1 + Math.floor(rand() * 20); // the worker coalesced some
          e = ev(seq + 1, 'gap', { lost }, attempt);
          seq += lost;
        } else {
          e = ev(++seq, r < 0.8 ? 'progress' : r < 0.9 ? 'log' : r < 0.95 ? 'event' : 'state', {}, attempt);
        }
        sent.push(e);
        q.push(e);
        peak = Math.max(peak, q.size);
        // The loop reads now and then, less often than events come.
        if (rand() < 0.3 && q.size > 0) got.push((await q.shift())!);
      }
      got.push(...(await drain(q)));
      expect(peak).toBeLessThanOrEqual(max);
      expectOrdered(got);
      for (let i = 0; i < got.length; i++) if (i === 0 || got[i]!.attempt !== got[i - 1]!.attempt) expect(got[i]!.seq).toBe(1);
      // The newest attempt is whole to its last seq (an older one may lose its tail to the next).
      const lastSent = sent.at(-1)!;
      expect(got.at(-1)!.attempt).toBe(lastSent.attempt);
      expect(got.at(-1)!.seq + covers(got.at(-1)!)).toBe(lastSent.seq + covers(lastSent));
      // Events that came through are the very objects pushed; the rest are counted as dropped.
      const bySeq = new Map(sent.map((e) => [`${e.attempt}:${e.seq}`, e]));
      for (const e of got) if (e.type !== 'gap') expect(e).toBe(bySeq.get(`${e.attempt}:${e.seq}`));
      expect(got.filter((e) => e.type !== 'gap').length + q.dropped).toBe(sent.filter((e) => e.type !== 'gap').length);
    }
  });
});

describe('a slow watch() loop', () => {
  const c = new WatchCluster('watchslow', 1);
  beforeAll(() => c.start());
  afterAll(() => c.stop());

  test('30,000 progress events against a loop taking 1 ms an event: capped, gaps in place of the oldest progress, the END arrives', async () => {
    const count = 30_000;
    // One progress event, 1.5 s for the watcher to subscribe, then the flood (yielding every 100
    // events, so the worker writes as it goes and a watcher that reads keeps up with it).
    const id = await c.client.submit('flood', { count, size: 10, delayMs: 1500 });
    let taskEnded = false;
    const ended = c.client.wait(id, { timeoutMs: 55_000 }).finally(() => (taskEnded = true));
    const w = c.watcher();
    const events: TaskEvent[] = [];
    let peak = 0;
    for await (const e of w.watch(id)) {
      events.push(e);
      peak = Math.max(peak, w.queued);
      // Slow while the task runs (at most about 1,000 events a second); then catch up at once.
      if (!taskEnded) await new Promise((r) => setTimeout(r, 1));
    }
    const rec = await ended;
    console.log(`slow loop: held at most ${peak} events, got ${events.length}, ${events.filter((e) => e.type === 'gap').length} gaps`);
    expect(rec.state).toBe('END');
    expect(w.queued).toBe(0);

    expectOrdered(events);
    const mine = events.filter((e) => e.attempt === rec.attempts);
    // RUNNING, progress 0, progress 1..count, END: every seq is there or inside a gap.
    expect(mine[0]!.seq).toBe(1);
    expect(mine.reduce((n, e) => n + covers(e), 0)).toBe(count + 3);
    expect(mine.at(-1)).toMatchObject({ type: 'state', state: 'END', seq: count + 3 });
    expect(mine.filter((e) => e.type === 'gap').length).toBeGreaterThan(0);
    // It really fell behind (the cap was in play), and never held more than the cap.
    expect(peak).toBeGreaterThan(WATCH_QUEUE_MAX / 2);
    expect(peak).toBeLessThanOrEqual(WATCH_QUEUE_MAX);
  });
});
