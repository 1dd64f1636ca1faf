/**
 * The worker: connects to every configured distributor, runs the task functions it is assigned,
 * and records each attempt's end with a fenced write. Its heartbeat (one Redis write per interval)
 * keeps all its tasks alive and brings it its inbox of takeovers and cancels. This file owns the
 * lifecycle, the distributor links, assignment and the seed's Redis-loss rules; the runs, the
 * end writes and supervision have their own modules.
 */
import { EventEmitter } from 'node:events';
import { DONE_STATES, loadConfig, TASK_NAME_RE, type AssignedTask, type DoneState, type TaskEvent, type Message, type WorkerConfig } from '@taskmesh/common';
import {
  Keys,
  Presence,
  RedisGate,
  Scripts,
  createRedis,
  closeRedis,
  createLogger,
  listen,
  Metrics,
  type Channel,
  type Finished,
  type FinishOutcome,
  type Logger,
  type MeshServer,
  type MetricsSample,
  type Redis,
} from '@taskmesh/common/internal';
import { createContext, EventLog, type TaskContext } from './context';
import { DistributorLink } from './distributor-link';
import { Finisher } from './finisher';
import { Run, RunTable, type AbortCode } from './run';
import { sleep } from './sleep';
import { WorkerSupervision } from './supervision';
import { WatchHub } from './watch-hub';

export type TaskFunction<C = Record<string, unknown>, R = unknown> = (config: C, ctx: TaskContext) => R | Promise<R>;

const EVENT_BUFFER = 1000;

/** An attempt on this worker, as its `add` and `delete` events name it. */
export interface TaskInfo {
  id: string;
  name: string;
  attempt: number;
  config: unknown;
}

export interface WorkerEvents {
  /** Every task event (progress, log, state...), as watchers receive them. */
  task: [TaskEvent];
  /** An attempt was assigned to this worker and starts now (the assemblage seed's `add`). */
  add: [TaskInfo];
  /**
   * An attempt must stop before it ended by itself: cancelled, taken over by a newer attempt, or
   * stopped by the worker (shutdown, Redis lost); `reason` says which. Emitted once per attempt,
   * as its ctx.signal aborts (the assemblage seed's `delete`).
   */
  delete: [TaskInfo & { reason: AbortCode; message: string }];
  /** The worker closed: it takes no more tasks (the assemblage seed's `close`). */
  close: [];
}

export class Worker extends EventEmitter<WorkerEvents> {
  readonly config: WorkerConfig;
  readonly keys: Keys;
  private readonly log: Logger;
  private readonly fns = new Map<string, TaskFunction>();
  private readonly runs = new RunTable();
  private readonly links: DistributorLink[] = [];
  private readonly hub: WatchHub;
  private readonly gate: RedisGate;
  readonly metrics: Metrics;
  private redis!: Redis;
  private scripts!: Scripts;
  private presence!: Presence;
  private finisher!: Finisher;
  private supervision!: WorkerSupervision;
  private server: MeshServer | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private started = false;
  private draining = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Redis answered again and the fences are being checked before anything else is written. */
  private recovering = false;

  constructor(config: WorkerConfig | string, overrides: Record<string, unknown> = {}) {
    super();
    this.config = typeof config === 'string' ? loadConfig('worker', config, overrides) : config;
    this.keys = new Keys(this.config.redis.prefix);
    this.log = createLogger('worker', { id: this.config.id });
    const c = this.config;
    this.hub = new WatchHub({
      log: this.log,
      maxMessageBytes: c.limits.max_message_bytes,
      bufferEvents: EVENT_BUFFER,
      healthIntervalMs: c.health.interval_ms,
      healthMisses: c.health.misses,
    });
    this.gate = new RedisGate((up, reason) => (up ? this.onRedisUp() : this.onRedisLost(reason)));
    this.metrics = new Metrics('worker', c.metrics, this.log);
    this.metrics.addSampler(() => this.sampleMetrics());
  }

  get id(): string {
    return this.config.id;
  }

  /** The watch port (useful with port 0). */
  get port(): number {
    return this.server?.port ?? this.config.port;
  }

  get running(): number {
    return this.runs.running;
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
    this.redis = c.redis.client ?? createRedis(c.redis, { name: `taskmesh-worker-${c.id}` });
    this.scripts = new Scripts(this.redis, this.keys);
    this.presence = new Presence(this.redis, this.keys, 'worker', c.id, c.health.interval_ms);
    this.finisher = new Finisher(this.scripts, c.id);
    this.supervision = new WorkerSupervision({
      id: c.id,
      runs: this.runs,
      scripts: this.scripts,
      redis: this.redis,
      keys: this.keys,
      presence: this.presence,
      log: this.log,
      intervalMs: c.health.interval_ms,
      register: () => this.register(),
      abort: (run, code, message) => this.abort(run, code, message),
      redisLost: (reason) => this.gate.set(false, reason),
      redisOk: () => void this.onRedisBack(),
      tellAny: (msg) => this.tellAny(msg),
    });
    try {
      await this.redis.ping();
      this.gate.set(true);
      this.redis.on('close', () => this.gate.set(false, 'connection closed'));
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
        onChannel: (ch) => this.hub.attach(ch),
        onRefused: (reason) => this.metrics.refusedConnections.inc({ reason }),
      });
      await this.register();
      await this.metrics.start();
    } catch (err) {
      // A worker that could not start leaves nothing open behind it (a port in use, no Redis).
      await this.server?.close();
      await this.metrics.close();
      if (!c.redis.client) await closeRedis(this.redis);
      throw err;
    }
    this.started = true;
    this.heartbeatTimer = setInterval(() => void this.supervision.beat(), c.health.interval_ms);
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
    const c = this.config;
    this.draining = true;
    for (const l of this.links) l.channel?.send({ type: 'draining' });
    const deadline = Date.now() + this.config.shutdown_grace_ms;
    while (this.runs.running > 0 && Date.now() < deadline) await sleep(25);
    for (const run of this.runs.active()) this.abort(run, 'TASK_STOPPED', 'the worker is shutting down');
    const settleBy = Date.now() + 2000;
    while (this.runs.size > 0 && Date.now() < settleBy) await sleep(25);
    // Functions that ignore their signal: record STOPPED for them now, so leaving is not a stall.
    const stubborn = [...this.runs.active()];
    for (const run of stubborn) {
      this.runs.move(run, 'abandoned');
      this.runs.remove(run);
    }
    // One batched write for all of them (the Finisher), each still fenced.
    const written = await Promise.all(
      stubborn.map((run) =>
        this.finisher
          .finish({ id: run.id, fence: run.fence, outcome: 'STOPPED', payload: 'the worker shut down', stopReason: 'stopped' })
          .catch(() => undefined),
      ),
    );
    stubborn.forEach((run, i) => {
      if (written[i]?.result !== 'recorded') return;
      run.events.push('state', { state: 'STOPPED', error: 'the worker shut down' });
      this.tell(run, { type: 'done', id: run.id, epoch: run.fence.epoch, assignment: run.fence.assignment, state: 'STOPPED', running: this.runs.running });
    });
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.closed = true;
    try {
      await this.presence.leave();
    } catch (err) {
      this.log.warn('could not deregister', { reason: (err as Error).message });
    }
    for (const l of this.links) l.stop();
    this.hub.close();
    await this.server?.close();
    this.gate.close();
    // A shared connection (redis.client) is its owner's to close.
    if (!c.redis.client) await closeRedis(this.redis);
    await this.metrics.close();
    this.log.info('stopped');
    this.safeEmit('close');
  }

  // ---- Redis -------------------------------------------------------------------------------

  private async register(): Promise<void> {
    const c = this.config;
    await this.presence.announce({
      host: c.advertise_host,
      port: this.port,
      tasks: JSON.stringify(this.taskNames),
      concurrency: c.concurrency,
      running: this.runs.running,
    });
  }

  private async announceTasks(): Promise<void> {
    await this.register().catch(() => undefined);
    for (const l of this.links) if (l.channel) this.sendRegister(l.channel);
  }

  /** The seed's rules: tell the distributors, pause, resume state_optional tasks, stop the rest. */
  private onRedisLost(reason: string): void {
    if (this.closed) return;
    this.log.warn('Redis connection lost', { reason, running: this.runs.running });
    for (const l of this.links) l.channel?.send({ type: 'redis', up: false });
    for (const run of this.runs.active()) {
      this.signalLifecycle(run, 'pause');
      if (this.openLinkTo(run) && run.task.state_optional) {
        this.signalLifecycle(run, 'resume');
      } else {
        this.abort(run, 'TASK_STOPPED', 'the worker lost its Redis connection');
      }
    }
  }

  /** Redis answers again: check every surviving attempt's fence before anything else is written. */
  private async onRedisBack(): Promise<void> {
    if (this.gate.up || this.closed || this.recovering) return;
    this.recovering = true;
    try {
      await this.supervision.verify();
    } catch {
      return;
    } finally {
      this.recovering = false;
    }
    this.gate.set(true);
  }

  private onRedisUp(): void {
    if (!this.started) return;
    this.log.info('Redis connection back', { running: this.runs.running });
    for (const l of this.links) l.channel?.send({ type: 'redis', up: true });
  }

  /** A throwing 'pause'/'resume' listener is the task's problem, never the worker's. */
  private signalLifecycle(run: Run, event: 'pause' | 'resume'): void {
    try {
      run.emitLifecycle(event);
    } catch (err) {
      this.log.warn(`a task's ${event} listener threw`, { task: run.id, attempt: run.task.attempt, reason: (err as Error).message });
    }
  }

  // ---- distributors ------------------------------------------------------------------------

  private sendRegister(ch: Channel): void {
    ch.send({
      type: 'register',
      prefix: this.config.redis.prefix,
      tasks: this.taskNames,
      concurrency: this.config.concurrency,
      running: this.runs.running,
      watch_host: this.config.advertise_host,
      watch_port: this.port,
    });
  }

  private onDistributor(link: DistributorLink, ch: Channel): void {
    this.sendRegister(ch);
    if (!this.gate.up) ch.send({ type: 'redis', up: false });
    if (this.draining) ch.send({ type: 'draining' });
    ch.startHealth(this.config.health.interval_ms, this.config.health.misses, () => this.runs.running);
    ch.on('message', (msg) => this.onDistributorMessage(link, ch, msg));
    ch.on('close', () => {
      // Without Redis and now without its distributor, nobody vouches for a state_optional task.
      if (this.gate.up || this.closed) return;
      for (const run of this.runs.active()) {
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
        if (run && run.phase === 'running' && run.fence.epoch <= msg.epoch) {
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
    const reject = (reason: string) =>
      ch.send({ type: 'reject', id: task.id, epoch: task.epoch, assignment: task.assignment, reason, running: this.runs.running });
    if (this.draining) return void reject('draining');
    if (!this.gate.up) return void reject('no Redis connection');
    if (this.runs.running >= this.config.concurrency) return void reject('at concurrency limit');
    const early = this.supervision.takeEarly(task.id, task.epoch);
    if (early) return void reject(early === 'cancel' ? 'cancelled before its frame arrived' : 'taken over before its frame arrived');
    const older = this.runs.get(task.id);
    if (older) {
      if (older.phase === 'recording') return void reject('an older attempt of this task is still recording its end here');
      // A newer attempt of a task still running here: the old run was taken over.
      if (older.fence.epoch < task.epoch) this.abort(older, 'TASK_TAKEN_OVER', `task ${task.id} was taken over by a newer attempt (epoch ${task.epoch})`);
      return void reject('an older attempt of this task is still stopping here');
    }
    const fn = this.fns.get(task.name);
    if (!fn) return void reject(`no task named ${task.name}`);
    const run = new Run(task, ch.peerId, new EventLog(task.id, task.name, task.attempt, EVENT_BUFFER, (e) => this.emitTaskEvent(e)));
    // The slot is taken before any await, so concurrency can never be exceeded.
    this.runs.add(run);
    this.safeEmit('add', info(run));
    this.log.debug('task started', { task: task.id, attempt: task.attempt, epoch: task.epoch, name: task.name, distributor: ch.peerId });
    void this.execute(run, fn);
  }

  // ---- running a task ----------------------------------------------------------------------

  private abort(run: Run, code: AbortCode, message: string): void {
    if (code === 'TASK_TAKEN_OVER') this.runs.detach(run);
    if (!run.abort(code, message)) return;
    this.log.info('aborting task', { task: run.id, attempt: run.task.attempt, reason: message });
    this.safeEmit('delete', { ...info(run), reason: code, message });
    if (code === 'TASK_STOPPED' && !this.gate.up) {
      // Nobody can hear from Redis: tell a distributor at once, so it records STOPPED and requeues.
      this.tell(run, {
        type: 'release',
        id: run.id,
        epoch: run.fence.epoch,
        assignment: run.fence.assignment,
        reason: 'worker lost Redis',
        running: this.runs.running,
      });
    }
  }

  /**
   * Runs the function. The assign script already recorded the start (RUNNING, started_at), so the
   * run writes nothing until it ends; a run whose attempt was taken over meanwhile learns it from
   * its inbox within one heartbeat, and its end write is refused in any case.
   */
  private async execute(run: Run, fn: TaskFunction): Promise<void> {
    const { task } = run;
    const t0 = performance.now();
    run.events.push('state', { state: 'RUNNING' });
    const ctx = createContext(
      { id: task.id, name: task.name, attempt: task.attempt, signal: run.ctrl.signal, events: run.events, on: (event, fn) => run.onLifecycle(event, fn) },
      (name, input, stepCtx) => this.callTask(name, input, stepCtx ?? ctx),
    );
    let outcome: FinishOutcome;
    let payload: string;
    let result: unknown = null;
    try {
      result = (await fn(task.config as Record<string, unknown>, ctx)) ?? null;
      outcome = 'END';
      payload = JSON.stringify(result);
    } catch (err) {
      const code = run.abortCode;
      if (code) {
        outcome = code === 'TASK_CANCELLED' ? 'CANCELLED' : 'STOPPED';
        payload = (run.ctrl.signal.reason as Error).message;
      } else {
        outcome = 'ERROR';
        payload = err instanceof Error ? err.message || err.name : String(err);
      }
    }
    this.metrics.runSeconds.observe({ name: task.name, outcome }, (performance.now() - t0) / 1000);
    // A result computed after the attempt was taken over is never written.
    if (run.abortCode === 'TASK_TAKEN_OVER') return this.settle(run, 'taken-over');
    if (run.phase === 'abandoned') return;
    this.runs.move(run, 'recording');
    let recorded: Finished | 'unrecorded' | undefined;
    try {
      recorded = await this.gate.write(() =>
        this.finisher.finish({ id: task.id, fence: run.fence, outcome, payload, stopReason: outcome === 'STOPPED' ? 'stopped' : '' }),
      );
      if (recorded === undefined) this.log.warn('gave up writing the end of a task', { task: task.id, attempt: task.attempt });
    } catch (err) {
      // Redis answered with an error (a record it cannot read): the run ends here and the record
      // stays as it is; this worker gives the attempt back once it sees it is not running it.
      this.log.error('could not record the end of a task', { task: task.id, attempt: task.attempt, reason: (err as Error).message });
      recorded = 'unrecorded';
    }
    this.settle(run, recorded, payload, result);
  }

  /** Reports what was really recorded (the record's state, not what this run hoped for). */
  private settle(run: Run, recorded: Finished | 'taken-over' | 'unrecorded' | undefined, payload?: string, result?: unknown): void {
    this.runs.remove(run);
    const { task } = run;
    // Whatever happens below, the attempt's events end here, so its watchers and its replay buffer
    // are not left waiting (an end already pushed wins: later pushes are ignored).
    if (recorded === undefined || recorded === 'unrecorded' || recorded === 'taken-over' || recorded.result === 'refused') {
      run.events.push('state', { state: 'TAKEN_OVER', error: 'the end of this attempt was not recorded' });
    }
    if (recorded === undefined) return;
    if (recorded === 'unrecorded') {
      this.metrics.attemptEnds.inc({ name: task.name, state: 'UNRECORDED' });
      // Nothing was written: free the slot its distributor counts.
      this.tell(run, { type: 'done', id: task.id, epoch: task.epoch, assignment: task.assignment, state: 'TAKEN_OVER', running: this.runs.running });
      return;
    }
    if (recorded === 'taken-over' || recorded.result === 'refused') {
      this.metrics.attemptEnds.inc({ name: task.name, state: 'TAKEN_OVER' });
      if (recorded !== 'taken-over') this.metrics.fencedWritesRefused.inc();
      this.log.info('attempt was taken over; its result is discarded', { task: task.id, attempt: task.attempt, epoch: run.fence.epoch });
      this.tell(run, { type: 'done', id: task.id, epoch: task.epoch, assignment: task.assignment, state: 'TAKEN_OVER', running: this.runs.running });
      return;
    }
    const { state } = recorded;
    this.log.debug('task ended', { task: task.id, attempt: task.attempt, state });
    this.metrics.attemptEnds.inc({ name: task.name, state });
    if (recorded.result === 'retry') this.metrics.retries.inc({ name: task.name });
    if (recorded.result === 'failed') this.log.warn('task FAILED: it threw in max_attempts runs', { task: task.id, attempt: task.attempt, error: payload });
    // The value as the function returned it (not parsed back from what was written): watchers get it JSON-encoded anyway.
    run.events.push('state', state === 'END' ? { state, result } : { state, error: payload });
    const done = (DONE_STATES as readonly string[]).includes(state) ? (state as DoneState) : 'TAKEN_OVER';
    this.tell(run, { type: 'done', id: task.id, epoch: task.epoch, assignment: task.assignment, state: done, running: this.runs.running });
  }

  /** Scrape-time values from memory only: the worker reads nothing from Redis for its metrics. */
  private sampleMetrics(): MetricsSample {
    const running = new Map<string, number>();
    for (const run of this.runs.active()) running.set(run.task.name, (running.get(run.task.name) ?? 0) + 1);
    const beat = this.supervision?.lastBeatAt ?? 0;
    return {
      tasks: [...running].map(([name, count]) => ({ state: 'RUNNING', name, count })),
      peers: { distributor: this.links.filter((l) => l.open).length, watcher: this.hub.connections },
      heartbeatAgeSeconds: beat === 0 ? null : (Date.now() - beat) / 1000,
      concurrency: this.config.concurrency,
    };
  }

  private emitTaskEvent(e: TaskEvent): void {
    this.hub.publish(e);
    if (this.listenerCount('task') > 0) this.safeEmit('task', e);
  }

  /** A throwing listener of the worker's own events is logged, never the worker's problem. */
  private safeEmit<K extends keyof WorkerEvents>(event: K, ...args: WorkerEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: WorkerEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.warn(`a '${event}' event listener threw`, { reason: (err as Error).message });
    }
  }

  private openLinkTo(run: Run): DistributorLink | undefined {
    return this.links.find((l) => l.open && l.distributorId === run.distributorId);
  }

  /** Sends to the distributor that assigned the task, or any connected one. */
  private tell(run: Run, msg: Message): void {
    const own = this.openLinkTo(run);
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
}

function info(run: Run): TaskInfo {
  return { id: run.task.id, name: run.task.name, attempt: run.task.attempt, config: run.task.config };
}

/** Creates a worker from a config object or a config file path. */
export function createWorker(config: WorkerConfig | string, overrides: Record<string, unknown> = {}): Worker {
  return new Worker(config, overrides);
}
