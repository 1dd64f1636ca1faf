/**
 * One watcher connection on a worker: its subscriptions and its outbox. Events are queued and
 * written on the next turn of the event loop, so a task calling ctx.progress in a tight loop never
 * waits on TLS or the socket. The outbox is where backpressure is decided (docs/protocol.md,
 * "Backpressure"):
 *
 * - frames go to the socket only while ws `bufferedAmount` (plus the Channel's unsent batch) is
 *   below `maxMessageBytes`;
 * - once outbox + socket hold more than `maxMessageBytes`, a new progress event replaces the
 *   unsent progress event of the same task and subscription, and the watcher gets an explicit
 *   `gap` for the ones it replaced;
 * - if the outbox still grows past 4 × `maxMessageBytes` (a flood of logs or custom events), the
 *   watcher is dropped with close 4009 WATCHER_TOO_SLOW and can resume with `since`.
 */
import { CloseCode, type TaskEvent } from '@taskmesh/common';
import type { Channel, Logger } from '@taskmesh/common/internal';

export interface Sub {
  /** The watcher's id for it. */
  readonly id: string;
  readonly conn: WatcherConn;
  readonly kind: 'task' | 'name' | 'all';
  /** The task id or name it follows ('' for all). */
  readonly target: string;
  /** `{"type":"event","sub":<id>,"event":` — so one event is serialised once for everyone. */
  readonly framePrefix: string;
}

interface Entry {
  /** null for a control frame. */
  sub: Sub | null;
  ev: TaskEvent;
  /** The frame, or null when a coalesced event replaced it (built at send time, so a stalled watcher costs no serialisation). */
  frame: string | null;
  bytes: number;
  /** Progress events this entry replaced: a `gap` from `gapSeq` of `gapLost` goes out first. */
  gapSeq: number;
  gapLost: number;
  sent: boolean;
}

/** How much unsent data (beyond the coalescing threshold) a watcher may hold before it is dropped. */
const DROP_FACTOR = 4;
/** While the socket is full, how often the outbox tries again. */
const RETRY_MS = 10;

export class WatcherConn {
  readonly subs = new Map<string, Sub>();
  private outbox: Entry[] = [];
  private head = 0;
  private outboxBytes = 0;
  /** Per (sub, task): the last unsent entry, when it is a progress event (it may be replaced). */
  private lastProgress = new Map<string, Entry>();
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private dropped = false;

  constructor(readonly ch: Channel, private readonly maxBytes: number, private readonly log: Logger) {}

  get open(): boolean {
    return this.ch.open && !this.dropped;
  }

  /** Queues one event for a subscription. `json()` is `JSON.stringify(ev)`, computed once for every subscriber. */
  enqueue(sub: Sub, ev: TaskEvent, json: () => string): void {
    if (!this.open) return;
    const key = `${sub.id}\u0000${ev.task}`;
    if (ev.type === 'progress') {
      const last = this.lastProgress.get(key);
      if (last && !last.sent && last.ev.attempt === ev.attempt && this.pressure() > this.maxBytes) {
        if (last.gapLost === 0) last.gapSeq = last.ev.seq;
        last.gapLost += ev.seq - last.ev.seq;
        last.ev = ev;
        last.frame = null; // its size stays counted as it was: progress events are alike
        return;
      }
    }
    const frame = `${sub.framePrefix}${json()}}`;
    const entry: Entry = { sub, ev, frame, bytes: frame.length, gapSeq: 0, gapLost: 0, sent: false };
    this.outbox.push(entry);
    this.outboxBytes += frame.length;
    if (ev.type === 'progress') this.lastProgress.set(key, entry);
    else this.lastProgress.delete(key);
    if (this.outboxBytes > DROP_FACTOR * this.maxBytes) {
      this.drop();
      return;
    }
    this.schedule();
  }

  /** Sends a control frame (watch_end, error) in order with the events already queued. */
  control(frame: string, sub: Sub | null): void {
    if (!this.open) return;
    const entry: Entry = { sub, ev: CONTROL, frame, bytes: frame.length, gapSeq: 0, gapLost: 0, sent: false };
    this.outbox.push(entry);
    this.outboxBytes += frame.length;
    this.schedule();
  }

  /** Forgets queued entries of a subscription that ended. */
  forget(sub: Sub): void {
    for (const [k, e] of this.lastProgress) if (e.sub === sub) this.lastProgress.delete(k);
  }

  close(code: number, reason: string): void {
    this.release();
    this.ch.close(code, reason);
  }

  /** Frees the outbox: the connection is gone. */
  release(): void {
    this.dropped = true;
    this.outbox = [];
    this.head = 0;
    this.outboxBytes = 0;
    this.lastProgress.clear();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private pressure(): number {
    return this.outboxBytes + this.ch.buffered;
  }

  private drop(): void {
    this.log.warn('dropping a watcher that fell behind', { peer: this.ch.peerId, unsent_bytes: this.outboxBytes });
    this.close(CloseCode.WATCHER_TOO_SLOW, 'watcher too slow');
  }

  private schedule(): void {
    if (this.scheduled || this.retryTimer) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    this.retryTimer = undefined;
    if (!this.open) return;
    const ch = this.ch;
    // Channel.sendEncoded packs the frames of one turn into `batch` frames: one TLS record each.
    while (this.head < this.outbox.length && ch.buffered < this.maxBytes) {
      const e = this.outbox[this.head++]!;
      e.sent = true;
      this.outboxBytes -= e.bytes;
      if (e.gapLost > 0 && e.sub) {
        const gap: TaskEvent = { task: e.ev.task, name: e.ev.name, attempt: e.ev.attempt, seq: e.gapSeq, ts: e.ev.ts, type: 'gap', lost: e.gapLost };
        ch.sendEncoded(`${e.sub.framePrefix}${JSON.stringify(gap)}}`);
      }
      ch.sendEncoded(e.frame ?? `${e.sub!.framePrefix}${JSON.stringify(e.ev)}}`);
    }
    if (this.head >= this.outbox.length) {
      this.outbox = [];
      this.head = 0;
      this.outboxBytes = 0;
      this.lastProgress.clear();
      return;
    }
    // Drop the sent prefix now and then, so a long-congested outbox does not keep it alive.
    if (this.head > 1024) {
      this.outbox = this.outbox.slice(this.head);
      this.head = 0;
    }
    this.retryTimer = setTimeout(() => this.flush(), RETRY_MS);
  }
}

/** Marks control entries (never coalesced). */
const CONTROL: TaskEvent = { task: '', name: '', attempt: 0, seq: 0, ts: 0, type: 'state' };
