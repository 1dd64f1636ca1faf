/**
 * What waits for one `watcher.watch()` loop: the events its follower accepted that the loop has not
 * taken yet. The follower never waits for the loop (the worker must not wait for us either), so a
 * loop slower than its task's events would make this grow without end; instead it holds at most
 * `max` events (docs/protocol.md, "A slow watch loop"):
 *
 * - over the cap, the oldest waiting `progress` event is dropped first; a run of dropped events
 *   becomes one `gap` (`seq` = the first lost, `lost` = how many), in its place;
 * - `state`, `log` and custom events are dropped (the oldest first) only when no progress event
 *   waits, and then the same way, into a `gap`.
 *
 * So the loop still gets every (attempt, seq) at most once and in order, with nothing missing
 * silently: an existing gap that a dropped event borders absorbs it.
 */
import type { TaskEvent } from '@taskmesh/common';
import { Handoff } from './event-queue';

/** Events one `watch()` loop may have waiting, at most. */
export const WATCH_QUEUE_MAX = 10_000;

interface Node {
  e: TaskEvent;
  prev: Node | null;
  next: Node | null;
}

const isGap = (e: TaskEvent): boolean => e.type === 'gap';

/** Whether gap `g` ends right before event `e` (same attempt, next seq). */
const borders = (g: TaskEvent, e: TaskEvent): boolean => g.attempt === e.attempt && g.seq + Number(g.lost) === e.seq;

export class WatchQueue {
  /** Oldest first. A linked list: dropping from the middle is O(1). */
  private first: Node | null = null;
  private last: Node | null = null;
  private count = 0;
  /** No progress event waits before this node (null: none waits at all). Only moves forward. */
  private progressFrom: Node | null = null;
  /** Every node before this one is a gap (null: all are). Only moves forward. */
  private eventFrom: Node | null = null;
  private readonly handoff = new Handoff<TaskEvent>();
  private closed = false;
  private lostCount = 0;

  constructor(readonly max = WATCH_QUEUE_MAX) {
    if (!Number.isInteger(max) || max < 2) throw new RangeError(`WatchQueue max must be an integer >= 2, got ${max}`);
  }

  /** Events waiting (gaps count as one each). Never more than `max`. */
  get size(): number {
    return this.count;
  }

  /** Events (not counting gaps) dropped for the cap so far; each is inside a `gap` the loop gets. */
  get dropped(): number {
    return this.lostCount;
  }

  push(e: TaskEvent): void {
    if (this.closed || this.handoff.give(e)) return;
    if (isGap(e) && this.last && isGap(this.last.e) && borders(this.last.e, e)) {
      this.last.e.lost = Number(this.last.e.lost) + Number(e.lost);
      return;
    }
    // A gap from the worker may absorb events we drop: hold a copy of our own to change.
    const n: Node = { e: isGap(e) ? { ...e } : e, prev: this.last, next: null };
    if (this.last) this.last.next = n;
    else this.first = n;
    this.last = n;
    this.count++;
    this.progressFrom ??= n;
    this.eventFrom ??= n;
    while (this.count > this.max) this.dropOne();
  }

  /** No more items: a pending and every later `shift` resolves undefined once drained. */
  close(): void {
    this.closed = true;
    if (this.count === 0) this.handoff.give(undefined);
  }

  /** The next event; undefined once closed and drained. */
  shift(): Promise<TaskEvent | undefined> {
    const n = this.first;
    if (n) {
      this.unlink(n);
      return Promise.resolve(n.e);
    }
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.handoff.park(resolve));
  }

  /** Drops one event into a gap, or merges two gaps: `count` falls, or one more event became a gap. */
  private dropOne(): void {
    const target = this.oldestProgress() ?? this.oldestEvent();
    if (!target) {
      // Only gaps of different attempts wait (max of them): the oldest goes. Its attempt's end
      // is missing then, which the next event's higher attempt says (protocol rule 4).
      this.unlink(this.first!);
      return;
    }
    const e = target.e;
    this.lostCount++;
    let gap: Node;
    if (target.prev && isGap(target.prev.e) && borders(target.prev.e, e)) {
      gap = target.prev;
      gap.e.lost = Number(gap.e.lost) + 1;
      this.unlink(target);
    } else {
      gap = target;
      gap.e = { task: e.task, name: e.name, attempt: e.attempt, seq: e.seq, ts: e.ts, type: 'gap', lost: 1 };
      if (this.progressFrom === gap) this.progressFrom = gap.next;
      if (this.eventFrom === gap) this.eventFrom = gap.next;
    }
    const after = gap.next;
    if (after && isGap(after.e) && borders(gap.e, after.e)) {
      gap.e.lost = Number(gap.e.lost) + Number(after.e.lost);
      this.unlink(after);
    }
  }

  private oldestProgress(): Node | null {
    let n = this.progressFrom;
    while (n && n.e.type !== 'progress') n = n.next;
    this.progressFrom = n;
    return n;
  }

  private oldestEvent(): Node | null {
    let n = this.eventFrom;
    while (n && isGap(n.e)) n = n.next;
    this.eventFrom = n;
    return n;
  }

  private unlink(n: Node): void {
    if (this.progressFrom === n) this.progressFrom = n.next;
    if (this.eventFrom === n) this.eventFrom = n.next;
    if (n.prev) n.prev.next = n.next;
    else this.first = n.next;
    if (n.next) n.next.prev = n.prev;
    else this.last = n.prev;
    n.prev = n.next = null;
    this.count--;
  }
}
