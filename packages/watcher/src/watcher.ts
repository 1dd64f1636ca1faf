/**
 * The watcher library: live task events straight from the workers (docs/protocol.md, "Watcher
 * protocol"). It reads the task record in Redis to find the worker, connects to it with its own
 * certificate (one connection per worker, however many tasks), and follows a task across requeue.
 */
import { loadConfig, parseRecord, UnknownTaskError, type TaskEvent, type TaskRecord, type WatcherConfig, type WatchSince } from '@taskmesh/common';
import { Keys, createRedis, closeRedis, createLogger, type Logger, type Redis } from '@taskmesh/common/internal';
import { TaskFollower, type FollowCore } from './follow';
import { WatchQueue } from './watch-queue';
import { WildWatch, type WildCore } from './wildcard';
import { LinkPool, type ReconnectOptions } from './worker-link';

export interface WatcherOptions {
  /** How often the record of a QUEUED or STOPPED task is read until it runs. @default 200 */
  pollMs?: number;
  /** After this long without an event, the record is read to check the task is still where it was. @default 2000 */
  recheckMs?: number;
  /** How often `<prefix>workers` is read for `{ all }` and `{ name }` subscriptions. @default 1000 */
  scanMs?: number;
  /** Backoff between connection attempts to one worker. */
  reconnect?: ReconnectOptions;
  /** Health checks on each worker connection. @default { interval_ms: 1000, misses: 3 } */
  health?: { interval_ms: number; misses: number };
  /** Called when an `{ all }` / `{ name }` subscription starts or stops hearing a worker. */
  onWorker?: (workerId: string, up: boolean) => void;
}

export interface WatchOptions {
  /** Resume after this (attempt, seq). */
  since?: WatchSince;
  /** Keep going after a terminal state (the task may be retried). */
  follow?: boolean;
  signal?: AbortSignal;
}

/** What `subscribe` follows: one task (optionally from `since`), every task of a name, or all. */
export type WatchFilter = string | { task: string; since?: WatchSince; follow?: boolean } | { name: string } | { all: true };

const RECORD_FIELDS = ['id', 'name', 'state', 'attempts', 'worker', 'result', 'error', 'updated_at', 'ended_at'] as const;

export class Watcher {
  readonly config: WatcherConfig;
  private readonly redis: Redis;
  private readonly keys: Keys;
  private readonly log: Logger;
  private readonly pool: LinkPool;
  private readonly core: FollowCore & WildCore;
  private readonly ctrl = new AbortController();
  /** What waits for each running `watch()` loop. */
  private readonly queues = new Set<WatchQueue>();
  private closing: Promise<void> | undefined;

  constructor(
    config: WatcherConfig,
    private readonly opts: WatcherOptions = {},
  ) {
    this.config = config;
    this.keys = new Keys(config.redis.prefix);
    this.log = createLogger('watcher', { id: config.id });
    this.redis = createRedis(config.redis, { name: `taskmesh-watcher-${config.id}` });
    this.pool = new LinkPool(
      { config, log: this.log, health: opts.health ?? { interval_ms: 1000, misses: 3 }, idleMs: 5000 },
      { baseMs: opts.reconnect?.baseMs ?? 100, maxMs: opts.reconnect?.maxMs ?? 5000 },
    );
    const { redis, keys } = this;
    this.core = {
      pool: this.pool,
      pollMs: opts.pollMs ?? 200,
      recheckMs: opts.recheckMs ?? 2000,
      async readRecord(id: string): Promise<TaskRecord | null> {
        const values = await redis.hmget(keys.task(id), ...RECORD_FIELDS);
        return parseRecord(Object.fromEntries(RECORD_FIELDS.map((f, i) => [f, values[i] ?? ''])));
      },
      async readWorker(id: string) {
        const [host, port] = await redis.hmget(keys.worker(id), 'host', 'port');
        return host && port && Number(port) > 0 ? { host, port: Number(port) } : null;
      },
      listWorkers: () => redis.smembers(keys.workers),
    };
  }

  /**
   * Events received for this watcher's `watch()` loops that they have not taken yet, over all of
   * them. Each loop has at most WATCH_QUEUE_MAX (10,000) waiting: a loop slower than its task gets
   * `gap` events in place of the oldest progress events instead (docs/protocol.md, "A slow watch loop").
   */
  get queued(): number {
    let n = 0;
    for (const q of this.queues) n += q.size;
    return n;
  }

  /**
   * Events of one task, in (attempt, seq) order, each once, ending after its terminal state
   * (unless `follow`). `break` releases it. Throws UnknownTaskError for an id with no record.
   * A loop that falls more than WATCH_QUEUE_MAX events behind loses the oldest progress events
   * first, each run of them replaced by one `gap` event (see `queued`).
   */
  async *watch(id: string, opts: WatchOptions = {}): AsyncGenerator<TaskEvent, void, undefined> {
    const q = new WatchQueue();
    this.queues.add(q);
    const ctrl = this.child(opts.signal);
    let failure: unknown;
    const f = new TaskFollower(this.core, id, (e) => q.push(e), { since: opts.since, pastTerminal: opts.follow, signal: ctrl.signal });
    void f.run().then(
      () => q.close(),
      (err: unknown) => {
        failure = err;
        q.close();
      },
    );
    try {
      for (;;) {
        const e = await q.shift();
        if (e === undefined) break;
        yield e;
      }
      if (failure) throw failure;
    } finally {
      ctrl.abort();
      this.queues.delete(q);
    }
  }

  /** Calls `handler` for each event; returns a function that stops. Errors (an unknown id) go to `onError`. */
  subscribe(filter: WatchFilter, handler: (ev: TaskEvent) => void, onError?: (err: Error) => void): () => void {
    const ctrl = this.child();
    const safe = (e: TaskEvent): void => {
      try {
        handler(e);
      } catch (err) {
        this.log.warn('a watch handler threw', { task: e.task, reason: (err as Error).message });
      }
    };
    const f = typeof filter === 'string' ? { task: filter } : filter;
    const done =
      'task' in f
        ? new TaskFollower(this.core, f.task, safe, { since: f.since, pastTerminal: f.follow, signal: ctrl.signal }).run()
        : new WildWatch(this.core, 'all' in f ? { all: true } : { name: f.name }, safe, {
            scanMs: this.opts.scanMs ?? 1000,
            signal: ctrl.signal,
            onWorker: this.opts.onWorker,
          }).run();
    done.catch((err: unknown) => {
      if (onError) onError(err as Error);
      else if (!(err instanceof UnknownTaskError)) this.log.warn('watch failed', { reason: (err as Error).message });
    });
    return () => ctrl.abort();
  }

  /** Stops every watch and closes every connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.ctrl.abort();
      this.pool.closeAll();
      await closeRedis(this.redis);
    })();
    return this.closing;
  }

  private child(outer?: AbortSignal): AbortController {
    const c = new AbortController();
    const abort = (): void => c.abort();
    this.ctrl.signal.addEventListener('abort', abort, { once: true });
    outer?.addEventListener('abort', abort, { once: true });
    c.signal.addEventListener(
      'abort',
      () => {
        this.ctrl.signal.removeEventListener('abort', abort);
        outer?.removeEventListener('abort', abort);
      },
      { once: true },
    );
    return c;
  }
}

/** A watcher from a config object or a config file path (role `watcher`: it needs its certificate). */
export function createWatcher(config: WatcherConfig | string, opts: WatcherOptions = {}): Watcher {
  return new Watcher(typeof config === 'string' ? loadConfig('watcher', config) : config, opts);
}
