/**
 * The distributor: pulls envelopes from `new-task` (reliably, through its own processing list),
 * records them, hands runnable tasks to connected workers, and supervises: health checks with its
 * workers, the own-tasks and all-tasks watch loops, requeue of STOPPED and stale attempts. This
 * file wires the parts together and owns the process's lifecycle and its Redis link.
 */
import type { ChainableCommander } from 'ioredis';
import { loadConfig, type DistributorConfig } from '@taskmesh/common';
import {
  Keys,
  Metrics,
  Presence,
  RedisGate,
  Scripts,
  createRedis,
  closeRedis,
  listen,
  createLogger,
  queuePart,
  type MeshServer,
  type PipelineReplies,
  type MetricsSample,
  type Redis,
} from '@taskmesh/common/internal';
import { Dispatcher } from './dispatch';
import { INTAKE_BLOCK_MS, Intake } from './intake';
import { Requeuer } from './requeue';
import { DistributorState } from './state';
import { TaskWatch, type Due } from './watch';
import { WorkerMessages } from './worker-messages';

export class Distributor {
  readonly config: DistributorConfig;
  readonly keys: Keys;
  private readonly log;
  private redis!: Redis;
  private blocking!: Redis;
  private sub!: Redis;
  private s!: DistributorState;
  private presence!: Presence;
  private server: MeshServer | undefined;
  private timers: NodeJS.Timeout[] = [];
  private intake!: Intake;
  private watch!: TaskWatch;
  private dispatcher!: Dispatcher;
  private closing: Promise<void> | undefined;
  readonly metrics: Metrics;
  /** When the last heartbeat reached Redis (0: none yet), for the heartbeat-age gauge. */
  private lastBeatAt = 0;

  constructor(config: DistributorConfig | string) {
    this.config = typeof config === 'string' ? loadConfig('distributor', config) : config;
    this.keys = new Keys(this.config.redis.prefix);
    this.log = createLogger('distributor', { id: this.config.id });
    this.metrics = new Metrics('distributor', this.config.metrics, this.log);
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
    this.blocking = createRedis(c.redis, { name: `taskmesh-distributor-${c.id}-intake`, blockMs: INTAKE_BLOCK_MS });
    this.sub = createRedis(c.redis, { name: `taskmesh-distributor-${c.id}-sub` });
    const gate = new RedisGate((up) => this.onRedisState(up));
    this.s = new DistributorState(
      c,
      this.keys,
      new Scripts(this.redis, this.keys, c.queue.kind === 'fifo' ? 'fifo' : 'priority'),
      this.redis,
      this.log,
      gate,
      this.metrics,
    );
    this.metrics.addSampler(() => this.sampleLocal());
    this.metrics.addSampler(() => this.sampleQueues());
    this.presence = new Presence(this.redis, this.keys, 'distributor', c.id, c.health.interval_ms);
    const requeuer = new Requeuer(this.s);
    this.dispatcher = new Dispatcher(this.s, requeuer);
    this.intake = new Intake(this.s, this.blocking, this.dispatcher);
    this.watch = new TaskWatch(this.s, this.intake, requeuer);
    const workers = new WorkerMessages(this.s, this.dispatcher, requeuer);
    this.redis.on('ready', () => gate.set(true));
    this.redis.on('close', () => gate.set(false));

    try {
      await this.redis.ping();
      gate.set(true);
      await this.warnAboutRedisSettings();
      this.sub.on('message', (_ch: string, msg: string) => this.onNotification(msg));
      // Notifications published while the subscriber was away are lost: once it listens again,
      // look at the queues. ioredis says 'ready' before it re-sends SUBSCRIBE, so subscribe here
      // (a second SUBSCRIBE to the channel is harmless) and look when Redis confirms it.
      this.sub.on('ready', () => {
        this.sub.subscribe(this.keys.channel).then(
          () => this.dispatcher.queuedWork(),
          () => undefined,
        );
      });
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
        onChannel: (ch) => workers.attach(ch),
        onRefused: (reason) => this.metrics.refusedConnections.inc({ reason }),
      });
      await this.heartbeat();
      await this.metrics.start();
    } catch (err) {
      // A distributor that could not start (no Redis, port in use) leaves nothing open behind it.
      await this.server?.close();
      await this.metrics.close();
      for (const r of [this.redis, this.blocking, this.sub]) r.disconnect();
      throw err;
    }

    const every = (ms: number, fn: () => Promise<void> | void) => {
      const t = setInterval(() => void Promise.resolve(fn()).catch((err: Error) => this.log.warn('loop failed', { reason: err.message })), ms);
      this.timers.push(t);
    };
    if (c.watch.own_interval_ms === c.health.interval_ms) {
      every(c.health.interval_ms, () => this.tick());
    } else {
      every(c.health.interval_ms, () => this.heartbeat());
      every(c.watch.own_interval_ms, () => this.ownLoop());
    }
    every(c.watch.all_interval_ms, async () => {
      if (!this.s.canSupervise()) return;
      try {
        await this.watch.allTasks();
      } finally {
        // The slow safety net: one look at the ready queues even when nothing asked for it, and
        // even when the pass failed.
        this.dispatcher.queuedWork();
      }
    });
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
    if (!this.s) return;
    this.s.stopping = true;
    for (const t of this.timers) clearInterval(t);
    await this.intake.stop();
    await this.dispatcher.settle();
    await this.server?.close();
    try {
      await this.intake.handBack(this.config.id);
      await this.presence.leave();
    } catch (err) {
      this.log.warn('could not deregister', { reason: (err as Error).message });
    }
    this.s.gate.close();
    await Promise.all([closeRedis(this.redis), closeRedis(this.sub)]);
    await this.metrics.close();
    this.log.info('stopped');
  }

  // ---- Redis state -------------------------------------------------------------------------

  private onRedisState(up: boolean): void {
    if (up) {
      this.s.redisSince = Date.now();
      this.log.info('Redis connection up');
      this.dispatcher.queuedWork();
    } else if (!this.s.stopping) {
      this.log.warn('Redis connection lost: not pulling, not requeueing until it is back');
    }
  }

  private async warnAboutRedisSettings(): Promise<void> {
    try {
      const aof = (await this.redis.config('GET', 'appendonly')) as string[];
      const policy = (await this.redis.config('GET', 'maxmemory-policy')) as string[];
      if (aof[1] === 'no') this.log.warn('Redis appendonly is "no": a Redis restart loses every task');
      if (policy[1] && policy[1] !== 'noeviction') this.log.warn('Redis maxmemory-policy is unsafe: only "noeviction" is', { policy: policy[1] });
    } catch {
      // CONFIG is often disabled on managed Redis; nothing to check then.
    }
  }

  /** One write for itself and one for every worker it hears, whatever they run. */
  private async heartbeat(): Promise<void> {
    if (this.s.stopping) return;
    await this.beat(this.redis.pipeline());
  }

  /**
   * The heartbeat and the own-tasks reads in one round trip, when both run every interval (the
   * default): an idle Redis pays for each wakeup, not for each command (docs/performance.md, W4).
   */
  private async tick(): Promise<void> {
    if (this.s.stopping) return;
    const pipe = this.redis.pipeline();
    const read = this.s.canSupervise() && this.watch.ownIdle() ? this.watch.queueReads(pipe) : undefined;
    const replies = await this.beat(pipe);
    if (!replies) return;
    // A pass still in progress keeps its own reads; down flags and a backlog are looked at anyway.
    await this.ownLoop(read ? read(replies) : undefined);
  }

  /**
   * Sends `pipe` with the heartbeat's writes queued after what it holds, and keeps alive the
   * workers this distributor hears that lost only their own Redis link. Returns the pipeline's
   * replies, or nothing when the beat failed (then the gate is down).
   */
  private async beat(pipe: ChainableCommander): Promise<PipelineReplies | undefined> {
    const c = this.config;
    try {
      const own = queuePart(pipe, (p) => this.presence.queueBeat(p, { host: c.advertise_host, port: this.port }));
      const replies = (await pipe.exec()) ?? [];
      own(replies);
      // A worker that lost only its own Redis link (it said so) stays alive while this
      // distributor hears it; one with Redis writes its own heartbeat, so touching it would only
      // add commands per worker-distributor link.
      const heard = [...this.s.workers.values()].filter((w) => w.registered && !w.redisUp).map((w) => w.id);
      await this.s.scripts.touchWorkers(heard, this.presence.ttlMs);
      this.lastBeatAt = Date.now();
      this.s.gate.set(true);
      return replies;
    } catch (err) {
      this.log.warn('heartbeat failed', { reason: (err as Error).message });
      this.s.gate.set(false);
      return undefined;
    }
  }

  // ---- metrics -----------------------------------------------------------------------------

  /** What this process knows without Redis: its workers, its own attempts, its heartbeat. */
  private sampleLocal(): MetricsSample {
    const running = new Map<string, number>();
    for (const t of this.s.own.values()) running.set(t.name, (running.get(t.name) ?? 0) + 1);
    return {
      tasks: [...running].map(([name, count]) => ({ state: 'RUNNING', name, count })),
      peers: { worker: this.s.workers.size },
      heartbeatAgeSeconds: this.lastBeatAt === 0 ? null : (Date.now() - this.lastBeatAt) / 1000,
    };
  }

  /**
   * The queue depths, read at scrape time (cached by Metrics) in one pipeline of O(task names)
   * cardinality commands: never a scan over tasks, nothing per task. Its `tasks` rows join the
   * RUNNING rows of sampleLocal; when Redis cannot answer, its last values are served.
   */
  private async sampleQueues(): Promise<MetricsSample> {
    const k = this.keys;
    const names = [...this.s.knownNames()];
    const pipe = this.redis.pipeline().llen(k.newTask).llen(k.dead).zcard(k.delayed).scard(k.stopped).zcard(k.ended);
    for (const n of names) pipe.zcard(k.ready(n));
    const rows = (await pipe.exec()) ?? [];
    const num = (i: number): number => {
      const [err, v] = rows[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      return Number(v);
    };
    const ready = names.map((name, i) => ({ name, count: num(5 + i) }));
    return {
      intakeDepth: num(0),
      deadListLength: num(1),
      readyDepth: ready,
      // The delayed, stopped and ended indexes hold every name: they are reported as name "*".
      tasks: [
        ...ready.map((r) => ({ state: 'QUEUED', name: r.name, count: r.count })),
        { state: 'DELAYED', name: '*', count: num(2) },
        { state: 'STOPPED', name: '*', count: num(3) },
        { state: 'TERMINAL', name: '*', count: num(4) },
      ],
    };
  }

  // ---- notifications -----------------------------------------------------------------------

  private onNotification(msg: string): void {
    if (msg === 'ready' || msg.startsWith('ready ')) this.dispatcher.queuedWork();
    else if (msg.startsWith('cancel ')) void this.routeCancel(msg.slice(7)).catch(() => undefined);
  }

  /** The fast path of a cancel: the worker's inbox has it durably; this tells a worker it hears now. */
  private async routeCancel(id: string): Promise<void> {
    const [worker, epoch] = await this.redis.hmget(this.keys.task(id), 'worker', 'epoch');
    const w = worker ? this.s.workers.get(worker) : undefined;
    if (w) w.channel.send({ type: 'revoke', id, epoch: Number(epoch), reason: 'cancelled' });
  }

  // ---- watch loops -------------------------------------------------------------------------

  private async ownLoop(due?: Due): Promise<void> {
    if (!this.s.canSupervise()) return;
    await this.watch.ownTasks(due);
    if (this.s.expireFlags()) this.dispatcher.queuedWork();
    else this.dispatcher.recheck();
  }
}
