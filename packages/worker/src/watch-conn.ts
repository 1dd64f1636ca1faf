/**
 * One watcher connection on a worker: its subscriptions and what it still has to be sent.
 *
 * Nothing is copied or serialised per event and per watcher when a task produces it. Each
 * subscription has a cursor (`Feed`) into the replay buffer of each attempt it follows; a new event
 * only marks the cursor pending. A flush turns every pending cursor's events into frames — a
 * subscription that asked for `batch` gets one `events` frame for many events, one JSON text per
 * event built once for every watcher (`EventSource.jsonAt`) — and writes them as few WebSocket
 * messages as the size bounds allow.
 *
 * When to flush: on the next turn of the event loop (setImmediate), or at once from inside the
 * task's own ctx.progress/log/emit call (see `notify`): when the socket is idle and the oldest
 * pending event has waited `FLUSH_AGE_MS` (the write goes to the fd synchronously, so those events
 * are on the wire while a synchronous loop still runs), or when a cursor is about to be overrun
 * by its attempt's buffer.
 *
 * Backpressure (docs/protocol.md, "Backpressure"): frames are written only while the socket holds
 * less than `maxBytes` unsent (ws `bufferedAmount` plus the Channel's own queue). Otherwise the
 * cursors wait, costing nothing, and the attempt's replay buffer (a fixed number of events) is the
 * only queue. If the buffer overwrote events a cursor had not sent, the watcher gets one `gap`
 * with their exact count when only progress events were lost (progress is coalesced), and is
 * closed with 4009 WATCHER_TOO_SLOW when a state, log or custom event was among them.
 */
import { performance } from 'node:perf_hooks';
import { CloseCode } from '@taskmesh/common';
import type { Channel, Logger } from '@taskmesh/common/internal';

/** One attempt's replay buffer, as the connection reads it (WatchHub's AttemptBuffer). */
export interface EventSource {
  readonly task: string;
  readonly name: string;
  readonly attempt: number;
  /** seq of the newest event buffered (0 before the first). */
  readonly lastSeq: number;
  /** seq of the oldest event still buffered. */
  readonly firstSeq: number;
  /** How many events it holds at most. */
  readonly capacity: number;
  /** seq of the newest state/log/custom event the buffer overwrote (0: none). */
  readonly lostMark: number;
  /** The buffered event with this seq as JSON text, built once however many watchers send it. */
  jsonAt(seq: number): string;
}

export interface Sub {
  /** The watcher's id for it. */
  readonly id: string;
  readonly conn: WatcherConn;
  readonly kind: 'task' | 'name' | 'all';
  /** The task id or name it follows ('' for all). */
  readonly target: string;
  /** The watcher asked for `events` frames (many events each) instead of one `event` frame per event. */
  readonly batch: boolean;
  /** `{"type":"event","sub":<id>,"event":` or `{"type":"events","sub":<id>,"events":[`. */
  readonly framePrefix: string;
}

/** A subscription's cursor in one attempt's buffer. */
export class Feed {
  /** In its connection's pending list. */
  queued = false;
  /** The subscription ended: nothing after this seq is sent. */
  until = Number.POSITIVE_INFINITY;
  /** A `gap` owed before `next`: the replay asked for events older than the buffer holds. */
  gapSeq = 0;
  gapLost = 0;

  /** @param next the seq it sends next */
  constructor(
    readonly sub: Sub,
    readonly src: EventSource,
    public next: number,
  ) {}
}

/** Frames a connection may have waiting for a full socket (cursors and control frames). */
const MAX_PENDING_CONTROL = 4096;

/**
 * How long the oldest pending event may wait before the producer's own call flushes. Small enough
 * for sub-millisecond delivery, large enough that one write carries many events (a write and its
 * TLS record cost about as much as serialising a hundred small events).
 */
const FLUSH_AGE_MS = 0.2;
/** While the socket is full, how often the connection tries again. */
const RETRY_MS = 10;
/** Frames one `batch` and events one `events` frame carry at most (protocol.ts BATCH_MAX_FRAMES, EVENTS_MAX). */
const MAX_FRAMES = 1000;
const MAX_EVENTS = 1000;
/** protocol.ts BATCH_MAX_BYTES: a message stays below it (and below half this side's own limit). */
const MAX_MESSAGE_CHARS = 65536;

export class WatcherConn {
  readonly subs = new Map<string, Sub>();
  /** Cursors with events to send, and control frames, in the order they must go out. */
  private pending: Array<Feed | string> = [];
  /** performance.now() when `pending` last became non-empty. */
  private pendingSince = 0;
  private immediate: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private dropped = false;
  /** Largest message written, in characters (room left for the wrappers). */
  private readonly messageChars: number;

  constructor(
    readonly ch: Channel,
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {
    this.messageChars = Math.min(MAX_MESSAGE_CHARS, Math.floor(maxBytes / 2)) - 64;
  }

  get open(): boolean {
    return !this.dropped && this.ch.open;
  }

  /** The feed's attempt has a new event. Called in the producer's call stack: must not throw. */
  notify(f: Feed): void {
    if (this.dropped) return;
    if (!f.queued) {
      f.queued = true;
      if (this.pending.length === 0) {
        this.pendingSince = performance.now();
        this.pending.push(f);
        this.schedule();
        return;
      }
      this.pending.push(f);
    }
    if (this.retryTimer !== undefined) return; // the socket is full: the cursors wait
    // An idle socket takes a write at once, even inside a task's synchronous loop: send what has
    // waited FLUSH_AGE_MS. A socket with a write in flight does not: TLS completes every write on
    // a later turn of the event loop and holds later writes in memory until then, so nothing more
    // can leave before the loop yields. Then write only to save events the attempt's buffer is
    // about to overwrite (half of it unsent), into the socket's queue, which the `maxBytes` rule
    // bounds: fewer, larger frames for the same bytes.
    const due = this.ch.buffered === 0 ? performance.now() - this.pendingSince >= FLUSH_AGE_MS : f.src.lastSeq - f.next >= f.src.capacity / 2;
    if (!due) return;
    try {
      this.flush();
    } catch (err) {
      this.log.warn('watcher write failed', { peer: this.ch.peerId, reason: (err as Error).message });
    }
  }

  /** Sends a control frame (watch_end, error) after everything already pending. */
  control(frame: string): void {
    if (this.dropped) return;
    // Control frames wait only while the socket is full. A watcher that keeps sending (every
    // frame counts as a sign of life) but never reads would grow this list without end: past
    // MAX_PENDING_CONTROL it is dropped like any watcher that cannot keep up.
    if (this.pending.length >= MAX_PENDING_CONTROL) {
      this.log.warn('dropping a watcher that does not read its replies', { peer: this.ch.peerId, pending: this.pending.length });
      this.close(CloseCode.WATCHER_TOO_SLOW, 'watcher too slow');
      return;
    }
    if (this.pending.length === 0) this.pendingSince = performance.now();
    this.pending.push(frame);
    this.schedule();
  }

  /** A subscription ended: its cursors send what its attempts hold now, and nothing later. */
  freeze(sub: Sub): void {
    for (const p of this.pending) if (typeof p !== 'string' && p.sub === sub) p.until = p.src.lastSeq;
  }

  close(code: number, reason: string): void {
    this.release();
    this.ch.close(code, reason);
  }

  /** Forgets everything pending: the connection is gone. */
  release(): void {
    this.dropped = true;
    this.pending = [];
    if (this.immediate) clearImmediate(this.immediate);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.immediate = undefined;
    this.retryTimer = undefined;
  }

  private schedule(): void {
    if (this.immediate || this.retryTimer) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.flush();
    });
  }

  /**
   * Writes pending frames while the socket has room: one WebSocket message per frame, or several
   * small frames as one `batch`. Whatever does not fit waits for the retry timer.
   */
  private flush(): void {
    if (this.immediate) {
      clearImmediate(this.immediate);
      this.immediate = undefined;
    }
    if (!this.open) return;
    const ch = this.ch;
    const cap = this.messageChars;
    let msg: string[] = [];
    let msgChars = 0;
    const write = (): void => {
      if (msg.length === 0) return;
      // Straight to the socket, not through Channel.sendEncoded: this is already the batching, and
      // Channel's would defer the write to the next turn, which is what the age rule avoids.
      ch.ws.send(msg.length === 1 ? msg[0]! : `{"type":"batch","frames":[${msg.join(',')}]}`);
      msg = [];
      msgChars = 0;
    };
    const pending = this.pending;
    let i = 0;
    while (i < pending.length) {
      if (ch.buffered + msgChars >= this.maxBytes) break;
      const p = pending[i]!;
      let frame: string | null;
      if (typeof p === 'string') {
        frame = p;
        i++;
      } else {
        frame = this.nextFrame(p, cap);
        if (this.dropped) return;
        if (frame === null) {
          p.queued = false;
          i++;
          continue;
        }
      }
      if (msg.length > 0 && (msgChars + frame.length + 1 > cap || msg.length >= MAX_FRAMES)) write();
      msg.push(frame);
      msgChars += frame.length + 1;
    }
    write();
    if (i >= pending.length) {
      this.pending = [];
      return;
    }
    this.pending = pending.slice(i);
    this.pendingSince = performance.now();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, RETRY_MS);
  }

  /** The feed's next frame (at most `cap` characters unless one event alone is larger), or null when it has nothing to send. */
  private nextFrame(f: Feed, cap: number): string | null {
    const src = f.src;
    const last = Math.min(src.lastSeq, f.until);
    const parts: string[] = [];
    let chars = 0;
    // Without `batch`, one `event` frame each: a gap goes alone, then the events one by one.
    if (f.gapLost > 0) {
      const gap = gapJson(src, f.gapSeq, f.gapLost);
      f.gapLost = 0;
      if (!f.sub.batch) return `${f.sub.framePrefix}${gap}}`;
      parts.push(gap);
    }
    if (f.next <= last && f.next < src.firstSeq) {
      if (src.lostMark >= f.next) {
        this.drop();
        return null;
      }
      const gap = gapJson(src, f.next, src.firstSeq - f.next);
      f.next = src.firstSeq;
      if (!f.sub.batch) return `${f.sub.framePrefix}${gap}}`;
      parts.push(gap);
    }
    if (!f.sub.batch) return f.next <= last ? `${f.sub.framePrefix}${src.jsonAt(f.next++)}}` : null;
    for (const p of parts) chars += p.length + 1;
    while (f.next <= last && parts.length < MAX_EVENTS) {
      const j = src.jsonAt(f.next);
      if (parts.length > 0 && chars + j.length + 1 > cap) break;
      parts.push(j);
      chars += j.length + 1;
      f.next++;
    }
    return parts.length === 0 ? null : `${f.sub.framePrefix}${parts.join(',')}]}`;
  }

  private drop(): void {
    this.log.warn('dropping a watcher that fell behind', { peer: this.ch.peerId });
    this.close(CloseCode.WATCHER_TOO_SLOW, 'watcher too slow');
  }
}

function gapJson(src: EventSource, seq: number, lost: number): string {
  return JSON.stringify({ task: src.task, name: src.name, attempt: src.attempt, seq, ts: Date.now(), type: 'gap', lost });
}
