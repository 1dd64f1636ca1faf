/**
 * The distributor: pulls envelopes from `new-task` (reliably, through its own processing list),
 * records them, hands runnable tasks to connected workers, and supervises: health checks with its
 * workers, the own-tasks and all-tasks watch loops, requeue of STOPPED and stale attempts.
 */
import { randomUUID } from 'node:crypto';
import { loadConfig, type DistributorConfig } from '@taskmesh/common';
import {
  Keys,
  Scripts,
  createRedis,
  closeRedis,
  listen,
  createLogger,
  type Channel,
  type Fence,
  type MeshServer,
  type Redis,
  type RequeueMode,
} from '@taskmesh/common/internal';
import { CloseCode, type Message } from '@taskmesh/common';
import { Intake } from './intake';
import { TaskWatch, type OwnTask } from './watch';
import { WorkerLink } from './worker-link';

/** Worker and distributor hashes expire when nobody keeps them current for this many intervals. */
const HASH_TTL_INTERVALS = 30;
/** A task a worker refused waits this long before it is runnable again, so a refusal cannot spin. */
const REJECT_DELAY_MS = 250;

/** A write the distributor owes Redis (a worker's release) while Redis is unreachable. */
type PendingOp = () => Promise<void>;

export class Distributor {
  readonly config: DistributorConfig;
  readonly keys: Keys;
  private readonly log;
  private redis!: Redis;
  private blocking!: Redis;
  private sub!: Redis;
  private scripts!: Scripts;
  private server: MeshServer | undefined;
  private readonly workers = new Map<string, WorkerLink>();
  /** Worker id -> time until which it is held as down. */
  private readonly flagged = new Map<string, number>();
  private readonly own = new Map<string, OwnTask>();
  private pending: PendingOp[] = [];
  private timers: NodeJS.Timeout[] = [];
  private intake!: Intake;
  private watch!: TaskWatch;
  private stopping = false;
  private closing: Promise<void> | undefined;
  private redisUp = false;
  /** When Redis last came back: stale checks wait a little so workers can write their heartbeats. */
  private redisSince = 0;
  private dispatchQueued = false;
  private dispatching: Promise<void> | undefined;

  constructor(config: DistributorConfig | string) {
    this.config = typeof config === 'string' ? loadConfig('distributor', config) : config;
    this.keys = new Keys(this.config.redis.prefix);
    this.log = createLogger(`distributor[${this.config.id}]`);
  }

  get id(): string {
    return this.config.id;
  }

  /** The port it listens on (useful with port 0). */
  get port(): number {
    return this.server?.port ?? this.config.port;
  }

  async start(): Promise<void> {
    const c = this.config;
    this.redis = createRedis(c.redis, { name: `taskmesh-distributor-${c.id}` });
    this.blocking = createRedis(c.redis, { name: `taskmesh-distributor-${c.id}-intake`, blocking: true });
    this.sub = createRedis(c.redis, { name: `taskmesh-distributor-${c.id}-sub` });
    this.scripts = new Scripts(this.redis, this.keys);
    this.intake = new Intake({
      config: c,
      keys: this.keys,
      scripts: this.scripts,
      redis: this.redis,
      blocking: this.blocking,
      log: this.log,
      redisUp: () => this.redisUp,
      onQueued: () => this.scheduleDispatch(),
    });
    this.watch = new TaskWatch({
      config: c,
      keys: this.keys,
      scripts: this.scripts,
      redis: this.redis,
      intake: this.intake,
      own: this.own,
      hears: (workerId) => this.workers.has(workerId),
      forget: (id) => this.forget(id),
      requeue: (...args) => this.requeue(...args),
      stopping: () => this.stopping,
    });
    this.redis.on('ready', () => this.onRedisState(true));
    this.redis.on('close', () => this.onRedisState(false));

    try {
      await this.redis.ping();
      this.onRedisState(true);
      await this.warnAboutRedisSettings();
      this.sub.on('message', (_ch: string, msg: string) => this.onNotification(msg));
      await this.sub.subscribe(this.keys.channel);

      this.server = await listen({
        id: c.id,
        role: 'distributor',
        tls: c.tls,
        shareKey: c.share_key,
        host: c.host,
        port: c.port,
        maxPayload: c.limits.max_message_bytes,
        allow: c.allow.workers,
        accept: ['worker'],
        log: this.log,
        onChannel: (ch) => this.onWorkerChannel(ch),
      });
      await this.heartbeat();
    } catch (err) {
      // A distributor that could not start (no Redis, port in use) leaves nothing open behind it.
      await this.server?.close();
      for (const r of [this.redis, this.blocking, this.sub]) r.disconnect();
      throw err;
    }

    const every = (ms: number, fn: () => Promise<void> | void) => {
      const t = setInterval(() => void Promise.resolve(fn()).catch((err: Error) => this.log.warn('loop failed', { reason: err.message })), ms);
      this.timers.push(t);
    };
    every(c.health.interval_ms, () => this.heartbeat());
    every(c.watch.own_interval_ms, () => this.ownLoop());
    every(c.watch.all_interval_ms, () => (this.canSupervise() ? this.watch.allTasks() : undefined));
    this.intake.start();
    void this.ownLoop().catch((err: Error) => this.log.warn('loop failed', { reason: err.message }));
    this.log.info('started', { host: c.host, port: this.port, prefix: c.redis.prefix });
  }

  /** Stops pulling, hands back what it pulled but did not record, deregisters, and closes. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    if (!this.redis) return;
    for (const t of this.timers) clearInterval(t);
    await this.intake.stop();
    await this.dispatching?.catch(() => undefined);
    await this.server?.close();
    try {
      await this.intake.handBack(this.config.id);
      await this.redis
        .multi()
        .srem(this.keys.distributors, this.config.id)
        .del(this.keys.distributor(this.config.id))
        .srem(this.keys.intakes, this.config.id)
        .exec();
    } catch (err) {
      this.log.warn('could not deregister', { reason: (err as Error).message });
    }
    await Promise.all([closeRedis(this.redis), closeRedis(this.sub)]);
    this.log.info('stopped');
  }

  // ---- Redis state -------------------------------------------------------------------------

  private onRedisState(up: boolean): void {
    if (up === this.redisUp) return;
    this.redisUp = up;
    if (up) {
      this.redisSince = Date.now();
      this.log.info('Redis connection up');
      void this.flushPending();
      this.scheduleDispatch();
    } else if (!this.stopping) {
      this.log.warn('Redis connection lost: not pulling, not requeueing until it is back');
    }
  }

  private async warnAboutRedisSettings(): Promise<void> {
    try {
      const aof = (await this.redis.config('GET', 'appendonly')) as string[];
      const policy = (await this.redis.config('GET', 'maxmemory-policy')) as string[];
      if (aof[1] === 'no') this.log.warn('Redis appendonly is "no": a Redis restart loses every task');
      if (policy[1] && policy[1] !== 'noeviction') this.log.warn(`Redis maxmemory-policy is "${policy[1]}": only "noeviction" is safe`);
    } catch {
      // CONFIG is often disabled on managed Redis; nothing to check then.
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.stopping) return;
    const c = this.config;
    const now = Date.now();
    const ttl = c.health.interval_ms * HASH_TTL_INTERVALS;
    try {
      await this.redis
        .multi()
        .hset(this.keys.distributor(c.id), { id: c.id, host: c.advertise_host, port: this.port, updated_at: now })
        .pexpire(this.keys.distributor(c.id), ttl)
        .sadd(this.keys.distributors, c.id)
        .sadd(this.keys.intakes, c.id)
        .exec();
      // One write for every worker it hears: a worker that lost only its own Redis link stays alive.
      const heard = [...this.workers.values()].filter((w) => w.registered).map((w) => w.id);
      await this.scripts.touchWorkers(heard, ttl, now);
      this.onRedisState(true);
      await this.flushPending();
    } catch (err) {
      this.log.warn('heartbeat failed', { reason: (err as Error).message });
      this.onRedisState(false);
    }
  }

  // ---- workers -----------------------------------------------------------------------------

  private onWorkerChannel(ch: Channel): void {
    const existing = this.workers.get(ch.peerId);
    if (existing) {
      this.log.warn('worker connected twice; closing the older connection', { worker: ch.peerId });
      existing.detach();
      existing.channel.close(CloseCode.DUPLICATE_ID, 'replaced by a newer connection');
      this.workers.delete(ch.peerId);
    }
    const w = new WorkerLink(ch);
    this.workers.set(w.id, w);
    ch.on('message', (msg) => void this.onWorkerMessage(w, msg).catch((err: Error) => this.log.warn('worker message failed', { worker: w.id, type: msg.type, reason: err.message })));
    ch.on('close', (code, reason) => void this.onWorkerClosed(w, code, reason).catch((err: Error) => this.log.warn('could not requeue a lost worker\'s tasks now; the watch loops will', { worker: w.id, reason: err.message })));
    ch.startHealth(this.config.health.interval_ms, this.config.health.misses);
    this.log.info('worker connected', { worker: w.id });
  }

  private async onWorkerMessage(w: WorkerLink, msg: Message): Promise<void> {
    if (this.workers.get(w.id) !== w) return;
    switch (msg.type) {
      case 'register': {
        if (msg.prefix !== this.config.redis.prefix) {
          // Another mesh's worker would be handed tasks whose records it cannot see.
          this.log.warn('refused worker: different redis.prefix', { worker: w.id, prefix: msg.prefix });
          w.channel.close(CloseCode.PREFIX_MISMATCH, `redis.prefix ${msg.prefix} differs from this distributor's`);
          return;
        }
        w.register(msg);
        const ttl = await this.redis.pttl(this.keys.workerDown(w.id)).catch(() => -2);
        if (ttl > 0) this.flagged.set(w.id, Date.now() + ttl);
        this.scheduleDispatch();
        return;
      }
      case 'ping':
        if (msg.running !== undefined) w.reported(msg.running);
        return;
      case 'redis':
        w.redisUp = msg.up;
        this.log.info(msg.up ? 'worker Redis link back' : 'worker lost its Redis link', { worker: w.id });
        if (msg.up) this.scheduleDispatch();
        return;
      case 'draining':
        w.draining = true;
        return;
      case 'reject':
        w.settled(msg.id, msg.running);
        await this.requeue(msg.id, w.id, msg, 'rejected', this.own.get(msg.id)?.name);
        this.scheduleDispatch();
        return;
      case 'done': {
        w.settled(msg.id, msg.running);
        const own = this.own.get(msg.id);
        if (own && own.epoch === msg.epoch) this.forget(msg.id);
        // TAKEN_OVER: the attempt lost its fence; nothing to record, only the capacity to free.
        if (msg.state === 'STOPPED') await this.requeue(msg.id, w.id, msg, 'stopped', own?.name);
        // Only a task that asked for it costs a round trip here; the watch loops catch the rest.
        if (msg.state === 'END' && own?.cleanEnd) await this.scripts.cleanEnd(msg.id).catch(() => undefined);
        this.scheduleDispatch();
        return;
      }
      case 'release':
        // The worker lost Redis and stopped this attempt: record STOPPED for it, then requeue.
        w.settled(msg.id, msg.running);
        const name = this.own.get(msg.id)?.name;
        this.pending.push(async () => {
          const fence = { epoch: msg.epoch, assignment: msg.assignment };
          const r = await this.scripts.finish(msg.id, w.id, fence, 'STOPPED', '', msg.reason);
          // The requeue script acts only on a STOPPED record with this fence, whoever recorded it.
          if (r.result !== 'refused') await this.requeue(msg.id, w.id, fence, 'stopped', name);
        });
        await this.flushPending();
        return;
      case 'error':
        this.log.warn('worker reported a protocol error', { worker: w.id, code: msg.code, reason: msg.message });
        return;
      case 'pong':
        return;
      default:
        w.channel.send({ type: 'error', code: 'UNEXPECTED_FRAME', message: `a distributor does not accept ${msg.type} frames` });
    }
  }

  private async onWorkerClosed(w: WorkerLink, code: number, reason: string): Promise<void> {
    if (this.workers.get(w.id) !== w) return;
    this.workers.delete(w.id);
    if (this.stopping) return;
    // 1000/1001: the worker said goodbye after stopping its tasks, which are requeued as STOPPED.
    // 1007/1009/4004: a frame it could not take; the process is alive and will reconnect.
    const goodbye = code === 1000 || code === 1001;
    const alive = goodbye || code === CloseCode.INVALID_UTF8 || code === CloseCode.TOO_BIG || code === CloseCode.PROTOCOL_ERROR;
    this.log.info(goodbye ? 'worker disconnected' : alive ? 'worker connection closed on a protocol error' : 'worker down', { worker: w.id, code, reason });
    if (!alive) {
      const holdMs = this.config.watch.stale_ms;
      this.flagged.set(w.id, Date.now() + holdMs);
      await this.redis.set(this.keys.workerDown(w.id), this.config.id, 'PX', holdMs).catch(() => undefined);
    }
    await this.requeueWorkerTasks(w.id, alive ? 'stopped' : 'down');
    this.scheduleDispatch();
  }

  /** Requeues every attempt recorded against a worker (each one epoch-checked). */
  private async requeueWorkerTasks(workerId: string, mode: RequeueMode): Promise<void> {
    let ids: string[];
    try {
      ids = await this.redis.smembers(this.keys.workerTasks(workerId));
    } catch (err) {
      this.log.warn('cannot requeue a lost worker\'s tasks now; the watch loops will', { worker: workerId, reason: (err as Error).message });
      return;
    }
    if (ids.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(this.keys.task(id), 'epoch', 'assignment', 'name');
    const rows = (await pipe.exec()) ?? [];
    const results = await Promise.allSettled(
      ids.map(async (id, i) => {
        const [epoch, assignment, name] = (rows[i]?.[1] ?? []) as (string | null)[];
        await this.requeue(id, workerId, { epoch: Number(epoch ?? -1), assignment: assignment ?? '' }, mode, name ?? undefined);
      }),
    );
    const failed = results.filter((r) => r.status === 'rejected').length;
    if (failed > 0) this.log.warn('some of a lost worker\'s tasks could not be requeued now; the watch loops will', { worker: workerId, failed });
  }

  private async requeue(id: string, workerId: string, fence: Fence, mode: RequeueMode, name?: string, staleBefore?: number): Promise<void> {
    const taskName = name ?? (await this.redis.hget(this.keys.task(id), 'name'));
    if (!taskName) {
      await this.redis.srem(this.keys.workerTasks(workerId), id);
      return;
    }
    const r = await this.scripts.requeue(id, taskName, workerId, fence, mode, {
      staleBefore,
      backoffMs: this.config.retry.backoff_ms,
      backoffMaxMs: this.config.retry.backoff_max_ms,
      rejectDelayMs: Math.min(REJECT_DELAY_MS, this.config.retry.backoff_ms),
    });
    if (r !== 'skipped') {
      this.forget(id);
      const level = mode === 'rejected' || mode === 'stopped' ? 'debug' : 'info';
      this.log[r === 'failed' ? 'warn' : level](`task ${r}`, { task: id, mode, worker: workerId, epoch: fence.epoch });
    }
  }

  private forget(id: string): void {
    const mine = this.own.get(id);
    if (!mine) return;
    this.own.delete(id);
    this.workers.get(mine.worker)?.settled(id);
  }

  private async flushPending(): Promise<void> {
    if (!this.redisUp) return;
    const ops = this.pending;
    this.pending = [];
    for (const op of ops) {
      try {
        await op();
      } catch {
        this.pending.push(op);
      }
    }
  }

  // ---- dispatch ----------------------------------------------------------------------------

  private onNotification(msg: string): void {
    const sp = msg.indexOf(' ');
    const kind = msg.slice(0, sp);
    const arg = msg.slice(sp + 1);
    if (kind === 'ready') this.scheduleDispatch();
    else if (kind === 'cancel') void this.routeCancel(arg).catch(() => undefined);
  }

  private async routeCancel(id: string): Promise<void> {
    const [worker, epoch] = await this.redis.hmget(this.keys.task(id), 'worker', 'epoch');
    const w = worker ? this.workers.get(worker) : undefined;
    if (w) w.channel.send({ type: 'revoke', id, epoch: Number(epoch), reason: 'cancelled' });
  }

  private isFlagged(workerId: string): boolean {
    const until = this.flagged.get(workerId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.flagged.delete(workerId);
    return false;
  }

  /** Coalesces dispatch requests: at most one run at a time, and one more queued behind it. */
  scheduleDispatch(): void {
    if (this.dispatchQueued || this.stopping) return;
    this.dispatchQueued = true;
    const run = async () => {
      await this.dispatching?.catch(() => undefined);
      this.dispatchQueued = false;
      await this.dispatch();
    };
    this.dispatching = run().catch((err: Error) => this.log.warn('dispatch failed', { reason: err.message }));
  }

  private async dispatch(): Promise<void> {
    for (let round = 0; round < 1000 && !this.stopping && this.redisUp; round++) {
      const eligible = [...this.workers.values()].filter((w) => w.canTakeWork && !this.isFlagged(w.id));
      if (eligible.length === 0) return;
      const byName = new Map<string, WorkerLink[]>();
      for (const w of eligible) for (const n of w.tasks) (byName.get(n) ?? byName.set(n, []).get(n)!).push(w);
      const names = [...byName.keys()];
      const pipe = this.redis.pipeline();
      for (const n of names) {
        const capacity = byName.get(n)!.reduce((s, w) => s + w.free, 0);
        pipe.zrange(this.keys.ready(n), '0', String(capacity - 1));
      }
      const rows = (await pipe.exec()) ?? [];
      const jobs: Promise<boolean>[] = [];
      names.forEach((n, i) => {
        const ids = (rows[i]?.[1] ?? []) as string[];
        const ws = byName.get(n)!;
        for (const id of ids) {
          // The least loaded worker of this name; among equals, the one that waited longest.
          let w: WorkerLink | undefined;
          for (const cand of ws) {
            if (cand.free > 0 && (!w || cand.load < w.load || (cand.load === w.load && cand.lastAssigned < w.lastAssigned))) w = cand;
          }
          if (!w) break;
          w.reserve(id);
          jobs.push(this.assignTo(w, id, n));
        }
      });
      if (jobs.length === 0) return;
      const results = await Promise.all(jobs);
      if (!results.some(Boolean)) return;
    }
  }

  private async assignTo(w: WorkerLink, id: string, name: string): Promise<boolean> {
    const assignment = randomUUID();
    let r;
    try {
      r = await this.scripts.assign(id, name, w.id, this.config.id, assignment);
    } catch (err) {
      w.settled(id);
      throw err;
    }
    if (r.kind !== 'assigned') {
      w.settled(id);
      return false;
    }
    let config: unknown;
    try {
      config = JSON.parse(r.config);
    } catch {
      config = r.config;
    }
    this.own.set(id, { name, worker: w.id, epoch: r.epoch, assignment, cleanEnd: r.cleanEnd });
    const sent = w.channel.send({
      type: 'assign',
      task: { id, name, config, epoch: r.epoch, assignment, attempt: r.attempt, state_optional: r.stateOptional },
    });
    if (!sent) {
      w.settled(id);
      await this.requeue(id, w.id, { epoch: r.epoch, assignment }, 'rejected', name);
    }
    return sent;
  }

  // ---- watch loops -------------------------------------------------------------------------

  /** Supervision waits one interval after Redis comes back, so workers can write heartbeats first. */
  private canSupervise(): boolean {
    return this.redisUp && !this.stopping && Date.now() - this.redisSince >= this.config.health.interval_ms;
  }

  private async ownLoop(): Promise<void> {
    if (!this.canSupervise()) return;
    await this.watch.ownTasks();
    for (const id of this.flagged.keys()) this.isFlagged(id);
    this.scheduleDispatch();
  }
}
