/**
 * The worker's side of the watch protocol (docs/protocol.md, "Watcher protocol"): authenticated
 * watcher connections subscribe to this worker's task events by task id, by task name, or all.
 * The Worker calls `attach` for every watcher channel and `publish` for every task event, in order.
 *
 * The hub keeps one bounded buffer per task (the attempt it runs here, or ran last). It serves
 * `since` replays and the events a late subscriber missed, and it is also every watcher's send
 * queue: a subscription is a cursor into it (watch-conn.ts), so an event is stored once however
 * many watch it. With nobody watching, `publish` only appends to that buffer: no serialisation and
 * no lookups beyond one Map get.
 */
import type { Message, MessageOf, TaskEvent } from '@taskmesh/common';
import type { Channel, Logger } from '@taskmesh/common/internal';
import { eventJson, eventPrefix } from './event-json';
import { Feed, WatcherConn, type EventSource, type Sub } from './watch-conn';

export interface WatchHubOptions {
  log: Logger;
  /** limits.max_message_bytes: also the backpressure unit (see watch-conn.ts). */
  maxMessageBytes: number;
  /** Events kept per task for replay with `since`. @default 1000 */
  bufferEvents?: number;
  /** How long the events of an attempt that ended here stay available for replay. @default 60000 */
  retainMs?: number;
  /** Most ended attempts kept for replay (the oldest go first). @default 100 */
  retainTasks?: number;
  /** Health checks on watcher connections (a watcher silent for interval × misses is dropped). @default 1000 */
  healthIntervalMs?: number;
  /** @default 3 */
  healthMisses?: number;
  /** Most subscriptions one watcher connection may hold. @default 10000 */
  maxSubsPerConnection?: number;
}

/** One attempt's events on this worker, in a ring of `capacity`, with their JSON once a watcher needed it. */
class AttemptBuffer implements EventSource {
  private readonly ring: TaskEvent[] = [];
  /** The event in the same slot as JSON text, filled when first sent to one of several subscriptions. */
  private readonly json: Array<string | undefined> = [];
  /** What the JSON of each of its events starts with (event-json.ts), made when first needed. */
  private prefix: string | undefined;
  private start = 0;
  lastSeq = 0;
  lostMark = 0;
  ended = false;
  endedAt = 0;
  /** Task subscriptions (by id) following this task. */
  readonly subs = new Set<Sub>();
  /** Each subscription's cursor in this attempt, task, name or all alike. */
  readonly feeds = new Map<Sub, Feed>();

  constructor(
    readonly task: string,
    readonly name: string,
    readonly attempt: number,
    readonly capacity: number,
  ) {}

  push(e: TaskEvent): void {
    if (this.ring.length < this.capacity) {
      this.ring.push(e);
      this.json.push(undefined);
    } else {
      const old = this.ring[this.start]!;
      if (old.type !== 'progress') this.lostMark = old.seq;
      this.ring[this.start] = e;
      this.json[this.start] = undefined;
      this.start = (this.start + 1) % this.capacity;
    }
    this.lastSeq = e.seq;
  }

  /** seq of the oldest event still buffered. */
  get firstSeq(): number {
    return this.lastSeq - this.ring.length + 1;
  }

  jsonAt(seq: number): string {
    const i = (this.start + (seq - this.firstSeq)) % this.ring.length;
    const cached = this.json[i];
    if (cached !== undefined) return cached;
    const j = eventJson(this.ring[i]!, (this.prefix ??= eventPrefix(this.task, this.name, this.attempt)));
    // Kept only when another subscription will read it too: for one watcher it would only keep
    // a thousand strings alive for the garbage collector to move to the old generation.
    if (this.feeds.size > 1) this.json[i] = j;
    return j;
  }

  /** The cursor of a subscription here; a new one starts at the newest event (the one just pushed). */
  feed(sub: Sub): Feed {
    let f = this.feeds.get(sub);
    if (!f) this.feeds.set(sub, (f = new Feed(sub, this, this.lastSeq)));
    return f;
  }
}

export class WatchHub {
  private readonly tasks = new Map<string, AttemptBuffer>();
  /** Ended attempts, oldest first (a Map keeps insertion order). */
  private readonly ended = new Map<string, AttemptBuffer>();
  private readonly conns = new Set<WatcherConn>();
  private readonly allSubs = new Set<Sub>();
  private readonly nameSubs = new Map<string, Set<Sub>>();
  private readonly bufferEvents: number;
  private readonly retainMs: number;
  private readonly retainTasks: number;
  private readonly trimTimer: NodeJS.Timeout;

  /** Watchers connected now (the connected-peers gauge). */
  get connections(): number {
    return this.conns.size;
  }

  constructor(private readonly opts: WatchHubOptions) {
    this.bufferEvents = Math.max(1, opts.bufferEvents ?? 1000);
    this.retainMs = opts.retainMs ?? 60000;
    this.retainTasks = opts.retainTasks ?? 100;
    // Ended attempts also age out when nothing else ends.
    this.trimTimer = setInterval(() => this.trim(), Math.max(1000, Math.min(this.retainMs, 10000)));
    this.trimTimer.unref();
  }

  /** A watcher connected and proved the share_key. */
  attach(ch: Channel): void {
    const conn = new WatcherConn(ch, this.opts.maxMessageBytes, this.opts.log);
    this.conns.add(conn);
    ch.startHealth(this.opts.healthIntervalMs ?? 1000, this.opts.healthMisses ?? 3);
    ch.on('message', (m) => this.onMessage(conn, m));
    ch.on('close', () => {
      for (const s of conn.subs.values()) this.unregister(s);
      conn.subs.clear();
      conn.release();
      this.conns.delete(conn);
    });
  }

  /** Every event of every run on this worker, in (attempt, seq) order per task. */
  publish(e: TaskEvent): void {
    let b = this.tasks.get(e.task);
    if (!b || e.attempt > b.attempt) {
      const next = new AttemptBuffer(e.task, e.name, e.attempt, this.bufferEvents);
      if (b) {
        // Whoever followed the task here follows its new attempt too.
        for (const s of b.subs) next.subs.add(s);
        this.ended.delete(e.task);
      }
      this.tasks.set(e.task, next);
      b = next;
    } else if (e.attempt < b.attempt || b.ended) {
      return; // a late event of an attempt already superseded or finished here
    }
    b.push(e);
    const final = e.type === 'state' && e.state !== 'RUNNING';
    if (final) {
      b.ended = true;
      b.endedAt = Date.now();
      this.ended.set(e.task, b);
      this.trim();
    }
    // Nobody follows this task, by id, by name or all: nothing to do but buffer it.
    const wild = this.allSubs.size > 0 || this.nameSubs.size > 0;
    if (b.subs.size === 0 && !wild) return;
    for (const s of b.subs) s.conn.notify(b.feed(s));
    if (wild) {
      for (const s of this.allSubs) s.conn.notify(b.feed(s));
      const named = this.nameSubs.get(e.name);
      if (named) for (const s of named) s.conn.notify(b.feed(s));
    }
    if (final) for (const s of [...b.subs]) this.end(s, 'ended');
  }

  /** The worker is closing: release every watcher. */
  close(): void {
    clearInterval(this.trimTimer);
    for (const c of this.conns) c.close(1001, 'worker shutting down');
    this.conns.clear();
    this.tasks.clear();
    this.ended.clear();
    this.allSubs.clear();
    this.nameSubs.clear();
  }

  private onMessage(conn: WatcherConn, m: Message): void {
    switch (m.type) {
      case 'watch':
        return this.onWatch(conn, m);
      case 'unwatch': {
        const s = conn.subs.get(m.sub);
        if (s) this.end(s, 'unwatched');
        else conn.control(JSON.stringify({ type: 'watch_end', sub: m.sub, reason: 'unwatched' }));
        return;
      }
      case 'ping':
      case 'pong':
        return; // the Channel answers pings and counts every frame as a sign of life
      case 'error':
        this.opts.log.warn('watcher reported a protocol error', { peer: conn.ch.peerId, code: m.code, reason: m.message });
        return;
      default:
        this.error(conn, 'UNEXPECTED_FRAME', `a worker does not accept ${m.type} frames from a watcher`);
    }
  }

  private onWatch(conn: WatcherConn, m: MessageOf<'watch'>): void {
    const targets = Number(m.task !== undefined) + Number(m.name !== undefined) + Number(m.all !== undefined);
    if (targets !== 1) return this.error(conn, 'BAD_FRAME', 'watch: exactly one of task, name or all');
    if (m.since && m.task === undefined) return this.error(conn, 'BAD_FRAME', 'watch.since: only with task');
    if (conn.subs.has(m.sub)) return this.error(conn, 'BAD_FRAME', `watch.sub: ${m.sub} is already in use on this connection`);
    if (conn.subs.size >= (this.opts.maxSubsPerConnection ?? 10000)) return this.error(conn, 'BAD_FRAME', 'watch: too many subscriptions on this connection');
    const kind = m.task !== undefined ? 'task' : m.name !== undefined ? 'name' : 'all';
    const batch = m.batch === true;
    const framePrefix = batch ? `{"type":"events","sub":${JSON.stringify(m.sub)},"events":[` : `{"type":"event","sub":${JSON.stringify(m.sub)},"event":`;
    const sub: Sub = { id: m.sub, conn, kind, target: m.task ?? m.name ?? '', batch, framePrefix };

    if (kind === 'task') {
      const b = this.tasks.get(sub.target);
      // A watcher that has seen a newer attempt than this worker runs is in the wrong place.
      if (!b || (m.since && m.since.attempt > b.attempt)) return conn.control(JSON.stringify({ type: 'watch_end', sub: sub.id, reason: 'not-here' }));
      conn.subs.set(sub.id, sub);
      this.replay(sub, b, m.since && m.since.attempt === b.attempt ? m.since.seq + 1 : 1);
      if (b.ended) this.end(sub, 'ended');
      else b.subs.add(sub);
      return;
    }
    conn.subs.set(sub.id, sub);
    if (kind === 'all') this.allSubs.add(sub);
    else {
      let set = this.nameSubs.get(sub.target);
      if (!set) this.nameSubs.set(sub.target, (set = new Set()));
      set.add(sub);
    }
    // The tasks it runs now, from their first buffered event, so a bar can start mid-way.
    for (const b of this.tasks.values()) if (!b.ended && (kind === 'all' || b.name === sub.target)) this.replay(sub, b, 1);
  }

  /** Starts the subscription's cursor at `fromSeq`, behind a `gap` if some are gone already. */
  private replay(sub: Sub, b: AttemptBuffer, fromSeq: number): void {
    const f = new Feed(sub, b, fromSeq);
    b.feeds.set(sub, f);
    if (fromSeq > b.lastSeq) return;
    const first = b.firstSeq;
    if (fromSeq < first) {
      f.gapSeq = fromSeq;
      f.gapLost = first - fromSeq;
      f.next = first;
    }
    sub.conn.notify(f);
  }

  /** Ends a subscription: no more events on it, then `watch_end`. */
  private end(s: Sub, reason: 'ended' | 'unwatched'): void {
    this.unregister(s);
    s.conn.subs.delete(s.id);
    s.conn.freeze(s);
    s.conn.control(JSON.stringify({ type: 'watch_end', sub: s.id, reason }));
  }

  private unregister(s: Sub): void {
    if (s.kind === 'task') {
      const b = this.tasks.get(s.target);
      b?.subs.delete(s);
      b?.feeds.delete(s);
      return;
    }
    if (s.kind === 'all') this.allSubs.delete(s);
    else this.nameSubs.get(s.target)?.delete(s);
    if (s.kind === 'name' && this.nameSubs.get(s.target)?.size === 0) this.nameSubs.delete(s.target);
    // Its cursors in every task it reached: a long task must not keep a gone watcher's connection alive.
    for (const b of this.tasks.values()) b.feeds.delete(s);
  }

  private error(conn: WatcherConn, code: string, message: string): void {
    conn.control(JSON.stringify({ type: 'error', code, message }));
  }

  /** Forgets ended attempts past the retention count or age. */
  private trim(): void {
    const cutoff = Date.now() - this.retainMs;
    for (const [id, b] of this.ended) {
      if (this.ended.size <= this.retainTasks && b.endedAt >= cutoff) break;
      this.ended.delete(id);
      if (this.tasks.get(id) === b && b.subs.size === 0) this.tasks.delete(id);
    }
  }
}
