/**
 * The batched watcher frames of docs/protocol.md ("Messages", "Batched delivery"): what a
 * receiver accepts and refuses, through the same decoder the watcher library uses.
 */
import { decodeFrame, type TaskEvent } from '@taskmesh/common';

const ev = (seq: number, extra: Record<string, unknown> = {}): TaskEvent => ({
  task: 't1',
  name: 'steps',
  attempt: 1,
  seq,
  ts: 1795903737322.5,
  type: 'progress',
  done: seq,
  total: null,
  message: null,
  ...extra,
});

describe('events frames', () => {
  test('an events frame decodes to its events, in order, unknown fields kept', () => {
    const frame = JSON.stringify({ type: 'events', sub: 's1', events: [ev(1), ev(2, { extra: 'x' })] });
    const d = decodeFrame(frame);
    expect(d.ok).toBe(true);
    if (!d.ok || d.msg.type !== 'events') throw new Error('not an events frame');
    expect(d.msg.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(d.msg.events[1]).toMatchObject({ extra: 'x', done: 2 });
  });

  test('one invalid event refuses the whole frame; empty or over 1000 is refused', () => {
    const bad = (events: unknown[]): string => {
      const d = decodeFrame(JSON.stringify({ type: 'events', sub: 's1', events }));
      return d.ok ? 'accepted' : d.error.message;
    };
    expect(bad([ev(1), { ...ev(2), seq: -1 }])).toBe('events.events[1].seq: expected a safe integer >= 0, got -1');
    expect(bad([ev(1), { ...ev(2), task: 7 }])).toBe('events.events[1].task: expected a string of at most 4096 characters, got 7');
    expect(bad([ev(1), [1, 2]])).toBe('events.events[1]: expected a JSON object, got an array of 2 items');
    expect(bad([])).toBe('events.events: expected an array of 1 to 1000 items, got an array of 0 items');
    expect(bad(Array.from({ length: 1001 }, (_, i) => ev(i + 1)))).toBe('events.events: expected an array of 1 to 1000 items, got an array of 1001 items');
    expect(bad(Array.from({ length: 1000 }, (_, i) => ev(i + 1)))).toBe('accepted');
  });

  test('an events frame inside a batch is checked like any inner frame', () => {
    const ok = decodeFrame(
      JSON.stringify({
        type: 'batch',
        frames: [
          { type: 'events', sub: 's1', events: [ev(1)] },
          { type: 'watch_end', sub: 's1', reason: 'ended' },
        ],
      }),
    );
    expect(ok.ok).toBe(true);
    const bad = decodeFrame(JSON.stringify({ type: 'batch', frames: [{ type: 'events', sub: 's1', events: [{ seq: 1 }] }] }));
    expect(bad.ok ? 'accepted' : bad.error.message).toBe('batch.frames[0]: events.events[0].task: missing, expected a string of at most 4096 characters');
  });

  test('watch takes batch: true only', () => {
    expect(decodeFrame(JSON.stringify({ type: 'watch', sub: 's1', task: 't1', batch: true })).ok).toBe(true);
    const d = decodeFrame(JSON.stringify({ type: 'watch', sub: 's1', task: 't1', batch: 1 }));
    expect(d.ok ? 'accepted' : d.error.message).toBe('watch.batch: expected true, got 1');
  });
});
