/**
 * One connection from a watcher to one worker, shared by every subscription there, and the pool
 * that keeps at most one per worker. A link that loses its connection tells each subscription
 * (`drop`) and leaves the pool; the next subscription dials again after a capped, jittered backoff.
 */
import { TaskmeshError, type TaskEvent, type WatcherConfig, type WatchEndReason, type WatchSince } from '@taskmesh/common';
import { connect, type Channel, type Logger } from '@taskmesh/common/internal';

/** What a subscription hears: its events (many at a time, in order), its end, or the connection's loss. */
export type LinkItem = { kind: 'events'; events: readonly TaskEvent[] } | { kind: 'end'; reason: WatchEndReason } | { kind: 'drop'; reason: string };

export type WatchSpec = { task: string; since?: WatchSince } | { name: string } | { all: true };

export interface LinkSubscription {
  readonly id: string;
  /** Ends the subscription (sends `unwatch` if the connection is still open). */
  close(): void;
}

export interface ReconnectOptions {
  /** First delay after a failed connection. @default 100 */
  baseMs?: number;
  /** Longest delay. @default 5000 */
  maxMs?: number;
}

export interface LinkSettings {
  config: WatcherConfig;
  log: Logger;
  health: { interval_ms: number; misses: number };
  /** A link without subscriptions closes after this long. */
  idleMs: number;
}

export class WorkerLink {
  private ch: Channel | undefined;
  private opening: Promise<Channel> | undefined;
  private readonly sinks = new Map<string, (item: LinkItem) => void>();
  private nextSub = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private gone = false;

  constructor(
    readonly workerId: string,
    readonly host: string,
    readonly port: number,
    private readonly s: LinkSettings,
    private readonly onGone: (l: WorkerLink) => void,
  ) {}

  get open(): boolean {
    return !this.gone && this.ch?.open === true;
  }

  /** Connects if needed: mutual TLS with the watcher's certificate, then the share_key proof. */
  async connect(): Promise<void> {
    if (this.gone) throw new TaskmeshError('LINK_CLOSED', `link to ${this.workerId} is closed`);
    if (this.ch?.open) return;
    const c = this.s.config;
    this.opening ??= connect({
      id: c.id,
      role: 'watcher',
      tls: c.tls,
      shareKey: c.share_key,
      host: this.host,
      port: this.port,
      maxPayload: c.limits.max_message_bytes,
      allow: [],
      log: this.s.log,
    }).then(
      (ch) => {
        this.ch = ch;
        ch.startHealth(this.s.health.interval_ms, this.s.health.misses);
        ch.on('message', (m) => {
          if (m.type === 'events') this.sinks.get(m.sub)?.({ kind: 'events', events: m.events });
          else if (m.type === 'event')
            this.sinks.get(m.sub)?.({ kind: 'events', events: [m.event] }); // a worker that ignores `batch`
          else if (m.type === 'watch_end') {
            const sink = this.sinks.get(m.sub);
            this.sinks.delete(m.sub);
            sink?.({ kind: 'end', reason: m.reason });
            this.idleCheck();
          } else if (m.type === 'error') this.s.log.warn('worker reported a protocol error', { worker: this.workerId, code: m.code, reason: m.message });
        });
        ch.on('close', (code, reason) => this.shut(`connection closed (${code}${reason ? ` ${reason}` : ''})`));
        if (this.gone) ch.close(1000, 'unused');
        return ch;
      },
      (err: Error) => {
        this.shut(err.message);
        throw err;
      },
    );
    await this.opening;
  }

  watch(spec: WatchSpec, sink: (item: LinkItem) => void): LinkSubscription {
    const id = `s${++this.nextSub}`;
    if (!this.open) {
      queueMicrotask(() => sink({ kind: 'drop', reason: 'not connected' }));
      return { id, close: () => undefined };
    }
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.sinks.set(id, sink);
    // `batch`: many events per frame, one JSON parse for them all (docs/protocol.md, "Messages").
    this.ch!.send({ type: 'watch', sub: id, ...spec, batch: true });
    return {
      id,
      close: () => {
        if (!this.sinks.delete(id)) return;
        this.ch?.send({ type: 'unwatch', sub: id });
        this.idleCheck();
      },
    };
  }

  close(): void {
    if (this.ch) this.ch.close(1000, 'bye');
    this.shut('closed by the watcher');
  }

  private idleCheck(): void {
    if (this.sinks.size > 0 || this.idleTimer || this.gone) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.sinks.size === 0) this.close();
    }, this.s.idleMs);
    this.idleTimer.unref();
  }

  private shut(reason: string): void {
    if (this.gone) return;
    this.gone = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const sinks = [...this.sinks.values()];
    this.sinks.clear();
    this.onGone(this);
    for (const s of sinks) s({ kind: 'drop', reason });
  }
}

/** At most one link per worker id, and the reconnect backoff of each worker. */
export class LinkPool {
  private readonly links = new Map<string, WorkerLink>();
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly s: LinkSettings,
    private readonly reconnect: Required<ReconnectOptions>,
  ) {}

  /** The link to a worker at this address (a worker that came back on another port gets a new one). */
  get(workerId: string, host: string, port: number): WorkerLink {
    const l = this.links.get(workerId);
    if (l && l.host === host && l.port === port) return l;
    l?.close();
    const link = new WorkerLink(workerId, host, port, this.s, (gone) => {
      if (this.links.get(workerId) === gone) this.links.delete(workerId);
    });
    this.links.set(workerId, link);
    return link;
  }

  /** Connects, counting failures for the backoff. */
  async connect(link: WorkerLink): Promise<void> {
    try {
      await link.connect();
      this.failures.delete(link.workerId);
    } catch (err) {
      this.failures.set(link.workerId, (this.failures.get(link.workerId) ?? 0) + 1);
      throw err;
    }
  }

  /** How long to wait before dialling this worker again: base × 2^(failures−1), capped, jittered to 50-100 %. */
  delay(workerId: string): number {
    const n = this.failures.get(workerId) ?? 0;
    if (n === 0) return 0;
    const d = Math.min(this.reconnect.maxMs, this.reconnect.baseMs * 2 ** Math.min(n - 1, 20));
    return d / 2 + Math.random() * (d / 2);
  }

  /** A connection that dropped counts as a failure too, so a flapping worker is not hammered. */
  noteDrop(workerId: string): void {
    this.failures.set(workerId, (this.failures.get(workerId) ?? 0) + 1);
  }

  closeAll(): void {
    for (const l of [...this.links.values()]) l.close();
    this.links.clear();
  }
}
