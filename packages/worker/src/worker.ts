/**
 * The worker: connects to every configured distributor, runs the task functions it is assigned,
 * and records each attempt's start and end with fenced writes. Its heartbeat (one Redis write per
 * interval) keeps all its tasks alive and tells it which were taken from it or cancelled.
 */
import { EventEmitter } from 'node:events';
import {
  loadConfig,
  TaskAbortError,
  TASK_NAME_RE,
  type AssignedTask,
  type TaskEvent,
  type Message,
  type WorkerConfig,
} from '@taskmesh/common';
import {
  Keys,
  Scripts,
  createRedis,
  closeRedis,
  createLogger,
  listen,
  type Channel,
  type Fence,
  type FinishOutcome,
  type FinishResult,
  type Logger,
  type MeshServer,
  type Redis,
} from '@taskmesh/common/internal';
import { createContext, EventLog, type TaskContext } from './context';
import { DistributorLink } from './distributor-link';
import { WatchHub } from './watch-hub';

export type TaskFunction<C = Record<string, unknown>, R = unknown> = (config: C, ctx: TaskContext) => R | Promise<R>;

const HASH_TTL_INTERVALS = 30;
const EVENT_BUFFER = 1000;

interface Run {
  task: AssignedTask;
  fence: Fence;
  /** Config id of the distributor that assigned it. */
  distributorId: string;
  ctrl: AbortController;
  lifecycle: EventEmitter;
  events: EventLog;
  /** Its end was already recorded as STOPPED at shutdown: whatever it returns later is dropped. */
  abandoned?: boolean;
}

export interface WorkerEvents {
  /** Every task event (progress, log, state...), as watchers receive them. */
  task: [TaskEvent];
}

export class Worker extends EventEmitter<WorkerEvents> {
  readonly config: WorkerConfig;
  readonly keys: Keys;
  private readonly log: Logger;
  private readonly fns = new Map<string, TaskFunction>();
  private readonly runs = new Map<string, Run>();
  private readonly links: DistributorLink[] = [];
  /** Runs whose function has returned but whose end is not recorded yet (fenced, so safe to land late). */
  private readonly finishing = new Map<string, Promise<unknown>>();
  /** Ids recorded against this worker that it does not run, and since when (local clock). */
  private unknownSince = new Map<string, number>();
  private beating = false;
  private redis!: Redis;
  private scripts!: Scripts;
  private server: MeshServer | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private started = false;
  private draining = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private redisUp = false;
  private redisWaiters: Array<() => void> = [];
  private hub!: WatchHub;

  constructor(config: WorkerConfig | string, overrides: Record<string, unknown> = {}) {
    super();
    this.config = typeof config === 'string' ? loadConfig('worker', config, overrides) : config;
    this.keys = new Keys(this.config.redis.prefix);
    this.log = createLogger(`worker[${this.config.id}]`);
    this.hub = new WatchHub({ log: this.log, maxMessageBytes: this.config.limits.max_message_bytes });
  }

  get id(): string {
    return this.config.id;
  }

  /** The watch port (useful with port 0). */
  get port(): number {
    return this.server?.port ?? this.config.port;
  }

  get running(): number {
    return this.runs.size;
  }

  get taskNames(): string[] {
    return [...this.fns.keys()];
  }

  /** Registers a task function under a name (`[A-Za-z0-9_-]{1,128}`); replaces one of the same name. */
  addTask<C = Record<string, unknown>, R = unknown>(name: string, fn: TaskFunction<C, R>): this {
    if (!TASK_NAME_RE.test(name)) throw new TypeError(`task name "${name}" must match [A-Za-z0-9_-]{1,128}`);
    if (typeof fn !== 'function') throw new TypeError(`task "${name}" must be a function`);
    this.fns.set(name, fn as TaskFunction);
    if (this.started) void this.announceTasks();
    return this;
  }

  removeTask(name: string): this {
    if (this.fns.delete(name) && this.started) void this.announceTasks();
    return this;
  }

  async start(): Promise<void> {
    if (this.started) return;
    const c = this.config;
    this.redis = createRedis(c.redis, { name: `taskmesh-worker-${c.id}` });
    this.scripts = new Scripts(this.redis, this.keys);
    try {
      await this.redis.ping();
      this.redisUp = true;
      this.redis.on('close', () => this.onRedisLost('connection closed'));
      this.redis.on('ready', () => void this.onRedisBack());

      this.server = await listen({
        id: c.id,
        role: 'worker',
        tls: c.tls,
        shareKey: c.share_key,
        host: c.host,
        port: c.port,
        maxPayload: c.limits.max_message_bytes,
        allow: c.allow.watchers,
        accept: ['watcher'],
        log: this.log,
        onChannel: (ch) => this.onWatcher(ch),
      });
      await this.registerInRedis();
    } catch (err) {
      // A worker that could not start leaves nothing open behind it (a port in use, no Redis).
      await this.server?.close();
      await closeRedis(this.redis);
      throw err;
    }
    this.started = true;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), c.health.interval_ms);
    for (const [host, port] of c.distributors) {
      const link = new DistributorLink(host, port, c, this.log, (l, ch) => this.onDistributor(l, ch));
      this.links.push(link);
      link.start();
    }
    this.log.info('started', { tasks: this.taskNames.join(',') || '(none)', concurrency: c.concurrency, watch_port: this.port });
  }

  /**
   * Drains: takes no new tasks, lets running ones finish for shutdown_grace_ms, stops the rest
   * (recorded STOPPED, so a distributor requeues them), deregisters and disconnects.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (!this.started) return;
    this.draining = true;
    for (const l of this.links) l.channel?.send({ type: 'draining' });
    const deadline = Date.now() + this.config.shutdown_grace_ms;
    while (this.runs.size > 0 && Date.now() < deadline) await sleep(25);
    for (const run of this.runs.values()) this.abort(run, 'TASK_STOPPED', 'the worker is shutting down');
    const settleBy = Date.now() + 2000;
    while ((this.runs.size > 0 || this.finishing.size > 0) && Date.now() < settleBy) await sleep(25);
    // Functions that ignore their signal: record STOPPED for them now, so leaving is not a stall.
    for (const run of [...this.runs.values()]) {
      run.abandoned = true;
      this.runs.delete(run.task.id);
      const r = await this.scripts.finish(run.task.id, this.id, run.fence, 'STOPPED', 'the worker shut down', 'stopped').catch(() => undefined);
      if (r?.result === 'recorded') this.tell(run, { type: 'done', id: run.task.id, epoch: run.fence.epoch, assignment: run.fence.assignment, state: 'STOPPED', running: this.runs.size });
    }
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.closed = true;
    try {
      await this.redis.multi().srem(this.keys.workers, this.id).del(this.keys.worker(this.id)).exec();
    } catch (err) {
      this.log.warn('could not deregister', { reason: (err as Error).message });
    }
    for (const l of this.links) l.stop();
    this.hub.close();
    await this.server?.close();
    for (const w of this.redisWaiters) w();
    await closeRedis(this.redis);
    this.log.info('stopped');
  }

  // ---- Redis -------------------------------------------------------------------------------

  private async registerInRedis(): Promise<void> {
    const c = this.config;
    await this.redis
      .multi()
      .hset(this.keys.worker(this.id), {
        id: this.id,
        host: c.advertise_host,
        port: this.port,
        tasks: JSON.stringify(this.taskNames),
        concurrency: c.concurrency,
        running: this.runs.size,
        updated_at: Date.now(),
      })
      .pexpire(this.keys.worker(this.id), c.health.interval_ms * HASH_TTL_INTERVALS)
      .sadd(this.keys.workers, this.id)
      .exec();
  }

  private async announceTasks(): Promise<void> {
    await this.registerInRedis().catch(() => undefined);
    for (const l of this.links) if (l.channel) this.sendRegister(l.channel);
  }

  private async heartbeat(): Promise<void> {
    if (this.closed || this.beating) return;
    this.beating = true;
    try {
      // Twice at most: a worker whose hash was gone registers again, then checks its fences at once.
      for (let round = 0; round < 2; round++) {
        const runs = [...this.runs.values()];
        let r;
        try {
          r = await this.scripts.heartbeat(this.id, this.config.health.interval_ms * HASH_TTL_INTERVALS, runs.map((x) => ({ id: x.task.id, ...x.fence })));
        } catch (err) {
          this.onRedisLost((err as Error).message);
          return;
        }
        if (!this.redisUp) void this.onRedisBack();
        if (r.kind === 'unregistered') {
          try {
            await this.registerInRedis();
          } catch (err) {
            this.onRedisLost((err as Error).message);
            return;
          }
          continue;
        }
        for (const i of r.lost) {
          const run = runs[i];
          if (run) this.abort(run, 'TASK_TAKEN_OVER', `task ${run.task.id} was taken over by a newer attempt (epoch moved on from ${run.fence.epoch})`);
        }
        for (const i of r.cancel) {
          const run = runs[i];
          if (run) this.abort(run, 'TASK_CANCELLED', `task ${run.task.id} was cancelled by a client`);
        }
        await this.giveBackUnknown(r.unknown).catch(() => undefined);
        return;
      }
    } finally {
      this.beating = false;
    }
  }

  /**
   * Tasks recorded against this worker that it does not run: their assign frame never arrived
   * (a distributor died between assigning and sending, or the socket dropped). One that has been
   * unknown here for two intervals (by this worker's own clock) is given back as STOPPED, so a
   * distributor requeues it; a frame still in flight arrives well within that time.
   */
  private async giveBackUnknown(ids: string[]): Promise<void> {
    const now = Date.now();
    const seen = new Map<string, number>();
    for (const id of ids) {
      if (this.runs.has(id) || this.finishing.has(id)) continue;
      seen.set(id, this.unknownSince.get(id) ?? now);
    }
    this.unknownSince = seen;
    for (const [id, since] of seen) {
      if (now - since < 2 * this.config.health.interval_ms || this.runs.has(id) || this.finishing.has(id)) continue;
      const fence = await this.scripts.giveBack(id, this.id);
      seen.delete(id);
      if (fence) {
        this.log.warn('gave back a task assigned to this worker that never reached it', { task: id, epoch: fence.epoch });
        this.tellAny({ type: 'done', id, epoch: fence.epoch, assignment: fence.assignment, state: 'STOPPED', running: this.runs.size });
      }
    }
  }

  /** The seed's rules: tell the distributors, pause, resume state_optional tasks, stop the rest. */
  private onRedisLost(reason: string): void {
    if (!this.redisUp || this.closed) return;
    this.redisUp = false;
    this.log.warn('Redis connection lost', { reason, running: this.runs.size });
    for (const l of this.links) l.channel?.send({ type: 'redis', up: false });
    for (const run of this.runs.values()) {
      this.signalLifecycle(run, 'pause');
      const link = this.links.find((l) => l.open && l.distributorId === run.distributorId);
      if (link && run.task.state_optional) {
        this.signalLifecycle(run, 'resume');
      } else {
        this.abort(run, 'TASK_STOPPED', 'the worker lost its Redis connection');
      }
    }
  }

  /** A throwing 'pause'/'resume' listener is the task's problem, never the worker's. */
  private signalLifecycle(run: Run, event: 'pause' | 'resume'): void {
    try {
      run.lifecycle.emit(event);
    } catch (err) {
      this.log.warn(`a task's ${event} listener threw`, { task: run.task.id, reason: (err as Error).message });
    }
  }

  private async onRedisBack(): Promise<void> {
    if (this.redisUp || this.closed) return;
    // Check every surviving attempt's fence before anything else is written.
    try {
      this.redisUp = true;
      await this.heartbeat();
    } catch {
      return;
    }
    if (!this.redisUp) return;
    this.log.info('Redis connection back', { running: this.runs.size });
    for (const l of this.links) l.channel?.send({ type: 'redis', up: true });
    const waiters = this.redisWaiters;
    this.redisWaiters = [];
    for (const w of waiters) w();
  }

  private waitForRedis(): Promise<void> {
    if (this.redisUp || this.closed) return Promise.resolve();
    return new Promise((r) => this.redisWaiters.push(r));
  }

  /** A fenced write that waits out a Redis outage (a refused write is final, an unreachable one is not). */
  private async fenced<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      await this.waitForRedis();
      try {
        return await fn();
      } catch (err) {
        if (this.closed) {
          this.log.warn(`gave up writing ${what}`, { reason: (err as Error).message });
          return undefined;
        }
        this.onRedisLost((err as Error).message);
        await sleep(100);
      }
    }
  }

  // ---- distributors ------------------------------------------------------------------------

  private sendRegister(ch: Channel): void {
    ch.send({ type: 'register', prefix: this.config.redis.prefix, tasks: this.taskNames, concurrency: this.config.concurrency, running: this.runs.size, watch_host: this.config.advertise_host, watch_port: this.port });
  }

  private onDistributor(link: DistributorLink, ch: Channel): void {
    this.sendRegister(ch);
    if (!this.redisUp) ch.send({ type: 'redis', up: false });
    if (this.draining) ch.send({ type: 'draining' });
    ch.startHealth(this.config.health.interval_ms, this.config.health.misses, () => this.runs.size);
    ch.on('message', (msg) => this.onDistributorMessage(link, ch, msg));
    ch.on('close', () => {
      // Without Redis and now without its distributor, nobody vouches for a state_optional task.
      if (this.redisUp || this.closed) return;
      for (const run of this.runs.values()) {
        if (run.distributorId === ch.peerId) this.abort(run, 'TASK_STOPPED', 'the worker lost Redis and then its distributor');
      }
    });
  }

  private onDistributorMessage(link: DistributorLink, ch: Channel, msg: Message): void {
    switch (msg.type) {
      case 'assign':
        this.onAssign(ch, msg.task);
        return;
      case 'revoke': {
        const run = this.runs.get(msg.id);
        if (run && run.fence.epoch <= msg.epoch) {
          if (msg.reason === 'cancelled') this.abort(run, 'TASK_CANCELLED', `task ${msg.id} was cancelled by a client`);
          else this.abort(run, 'TASK_TAKEN_OVER', `task ${msg.id} was taken over by a newer attempt`);
        }
        return;
      }
      case 'error':
        this.log.warn('distributor reported a protocol error', { distributor: link.label, code: msg.code, reason: msg.message });
        return;
      case 'ping':
      case 'pong':
        return;
      default:
        ch.send({ type: 'error', code: 'UNEXPECTED_FRAME', message: `a worker does not accept ${msg.type} frames from a distributor` });
    }
  }

  private onAssign(ch: Channel, task: AssignedTask): void {
    const reject = (reason: string) => ch.send({ type: 'reject', id: task.id, epoch: task.epoch, assignment: task.assignment, reason, running: this.runs.size });
    if (this.draining) return void reject('draining');
    if (!this.redisUp) return void reject('no Redis connection');
    if (this.runs.size >= this.config.concurrency) return void reject('at concurrency limit');
    if (this.finishing.has(task.id)) return void reject('an older attempt of this task is still recording its end here');
    const older = this.runs.get(task.id);
    if (older) {
      // A newer attempt of a task still running here: the old run was taken over.
      if (older.fence.epoch < task.epoch) this.abort(older, 'TASK_TAKEN_OVER', `task ${task.id} was taken over by a newer attempt (epoch ${task.epoch})`);
      return void reject('an older attempt of this task is still stopping here');
    }
    const fn = this.fns.get(task.name);
    if (!fn) return void reject(`no task named ${task.name}`);
    const run: Run = {
      task,
      fence: { epoch: task.epoch, assignment: task.assignment },
      distributorId: ch.peerId,
      ctrl: new AbortController(),
      lifecycle: new EventEmitter(),
      events: new EventLog(task.id, task.name, task.attempt, EVENT_BUFFER, (e) => this.emitTaskEvent(e)),
    };
    // The slot is taken before any await, so concurrency can never be exceeded.
    this.runs.set(task.id, run);
    void this.execute(run, fn);
  }

  // ---- running a task ----------------------------------------------------------------------

  private abort(run: Run, code: 'TASK_TAKEN_OVER' | 'TASK_CANCELLED' | 'TASK_STOPPED', message: string): void {
    if (run.ctrl.signal.aborted) return;
    this.log.info('aborting task', { task: run.task.id, reason: message });
    run.ctrl.abort(new TaskAbortError(code, message));
    if (code === 'TASK_STOPPED' && !this.redisUp) {
      // Nobody can hear from Redis: tell a distributor at once, so it records STOPPED and requeues.
      this.tell(run, { type: 'release', id: run.task.id, epoch: run.fence.epoch, assignment: run.fence.assignment, reason: 'worker lost Redis', running: this.runs.size });
    }
  }

  private async execute(run: Run, fn: TaskFunction): Promise<void> {
    const { task } = run;
    let started: boolean | undefined;
    try {
      started = await this.scripts.start(task.id, run.fence);
    } catch (err) {
      this.log.warn('could not record the start', { task: task.id, reason: (err as Error).message });
    }
    if (!started) {
      this.release(run);
      this.tell(run, { type: 'reject', id: task.id, epoch: task.epoch, assignment: task.assignment, reason: started === false ? 'attempt no longer current' : 'start not recorded', running: this.runs.size });
      return;
    }
    run.events.push('state', { state: 'RUNNING' });
    const ctx = createContext(
      { id: task.id, name: task.name, attempt: task.attempt, signal: run.ctrl.signal, events: run.events, lifecycle: run.lifecycle },
      (name, input) => this.callTask(name, input, ctx),
    );
    let outcome: FinishOutcome;
    let payload: string;
    try {
      const result = await fn(task.config as Record<string, unknown>, ctx);
      outcome = 'END';
      payload = JSON.stringify(result ?? null);
    } catch (err) {
      const reason = run.ctrl.signal.reason as unknown;
      if (run.ctrl.signal.aborted && reason instanceof TaskAbortError) {
        outcome = reason.code === 'TASK_CANCELLED' ? 'CANCELLED' : 'STOPPED';
        payload = reason.message;
      } else {
        outcome = 'ERROR';
        payload = err instanceof Error ? err.message || err.name : String(err);
      }
    }
    // A result computed after the attempt was taken over is never written.
    if ((run.ctrl.signal.reason as TaskAbortError | undefined)?.code === 'TASK_TAKEN_OVER') return this.settle(run, 'taken-over');
    if (run.abandoned) return;
    this.release(run);
    const write = this.fenced(`the end of task ${task.id}`, () => this.scripts.finish(task.id, this.id, run.fence, outcome, payload, outcome === 'STOPPED' ? 'stopped' : ''));
    this.finishing.set(task.id, write);
    const recorded = await write;
    this.finishing.delete(task.id);
    this.settle(run, recorded, payload);
  }

  /** Frees the slot of this run (never of a newer run of the same task). */
  private release(run: Run): void {
    if (this.runs.get(run.task.id) === run) this.runs.delete(run.task.id);
  }

  /** Reports what was really recorded (the record's state, not what this run hoped for). */
  private settle(run: Run, recorded: { result: FinishResult; state: string } | 'taken-over' | undefined, payload?: string): void {
    this.release(run);
    const { task } = run;
    if (recorded === undefined) return;
    if (recorded === 'taken-over' || recorded.result === 'refused') {
      this.log.info('attempt was taken over; its result is discarded', { task: task.id, epoch: run.fence.epoch });
      this.tell(run, { type: 'done', id: task.id, epoch: task.epoch, assignment: task.assignment, state: 'TAKEN_OVER', running: this.runs.size });
      return;
    }
    const { result, state } = recorded;
    if (result === 'failed') this.log.warn('task FAILED: it threw in max_attempts runs', { task: task.id, attempt: task.attempt, error: payload });
    run.events.push('state', state === 'END' ? { state, result: JSON.parse(payload ?? 'null') as unknown } : { state, error: payload });
    this.tell(run, { type: 'done', id: task.id, epoch: task.epoch, assignment: task.assignment, state, running: this.runs.size });
  }

  private emitTaskEvent(e: TaskEvent): void {
    this.hub.publish(e);
    try {
      this.emit('task', e);
    } catch (err) {
      this.log.warn("a 'task' event listener threw", { task: e.task, reason: (err as Error).message });
    }
  }

  /** Sends to the distributor that assigned the task, or any connected one. */
  private tell(run: Run, msg: Message): void {
    const own = this.links.find((l) => l.open && l.distributorId === run.distributorId);
    if (own) own.channel?.send(msg);
    else this.tellAny(msg);
  }

  private tellAny(msg: Message): void {
    this.links.find((l) => l.open)?.channel?.send(msg);
  }

  private async callTask(name: string, input: unknown, ctx: TaskContext): Promise<unknown> {
    const fn = this.fns.get(name);
    if (!fn) throw new Error(`no task named ${name} on this worker`);
    ctx.signal.throwIfAborted();
    return fn(input as Record<string, unknown>, ctx);
  }

  // ---- watchers ----------------------------------------------------------------------------

  private onWatcher(ch: Channel): void {
    this.hub.attach(ch);
  }
}

/** Creates a worker from a config object or a config file path. */
export function createWorker(config: WorkerConfig | string, overrides: Record<string, unknown> = {}): Worker {
  return new Worker(config, overrides);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
