/**
 * TaskClient: submit, inspect, wait for and cancel tasks from any process. Speaks only to Redis,
 * so what it does any language can do with the keys of SPEC section 2.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisConfig } from './config';
import { checkFrameSize, validateEnvelope, type EnvelopeInput } from './envelope';
import { TaskmeshError, UnknownTaskError } from './errors';
import { Keys } from './keys';
import { isTerminal, parseRecord, type TaskRecord, type TaskState } from './record';
import { closeRedis, createRedis } from './redis';
import { Scripts } from './scripts';
import { subscribeCompletions, type OnCompleteOptions, type Subscription } from './completions';

export type SubmitOptions = Omit<EnvelopeInput, 'name' | 'config'>;

export interface WaitOptions {
  /** Give up after this long (TaskmeshError code TIMEOUT). Default: wait forever. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class TaskClient {
  readonly keys: Keys;
  private readonly redis: Redis;
  /** False when the connection was passed in (redis.client): it is the caller's to close. */
  private readonly ownsRedis: boolean;
  private readonly scripts: Scripts;
  private closing: Promise<void> | undefined;

  private readonly maxBytes: number;
  private readonly redisConfig: RedisConfig;
  private readonly subscriptions = new Set<Subscription>();

  constructor(config: { redis: RedisConfig; limits?: { max_message_bytes: number } }) {
    this.maxBytes = config.limits?.max_message_bytes ?? 1048576;
    this.redisConfig = config.redis;
    this.keys = new Keys(config.redis.prefix);
    this.ownsRedis = !config.redis.client;
    this.redis = config.redis.client ?? createRedis(config.redis, { name: 'taskmesh-client' });
    this.scripts = new Scripts(this.redis, this.keys);
  }

  /** Records the task as QUEUED and pushes its envelope; returns its id at once. */
  async submit(name: string, config: Record<string, unknown> = {}, opts: SubmitOptions = {}): Promise<string> {
    const parsed = validateEnvelope({ ...opts, name, config });
    if (!parsed.ok) throw new TaskmeshError('BAD_ENVELOPE', parsed.reason);
    const f = parsed.fields;
    const tooBig = checkFrameSize(f, this.maxBytes);
    if (tooBig) throw new TaskmeshError('BAD_ENVELOPE', tooBig);
    const envelope = JSON.stringify({
      id: f.id,
      name: f.name,
      config,
      max_attempts: f.max_attempts,
      max_stalls: f.max_stalls,
      priority: f.priority,
      state_optional: f.state_optional,
      clean_end: f.clean_end,
    });
    const size = Buffer.byteLength(envelope, 'utf8');
    if (size > this.maxBytes)
      throw new TaskmeshError('BAD_ENVELOPE', `envelope is ${size} bytes, over the limit of ${this.maxBytes} (limits.max_message_bytes)`);
    if (!(await this.scripts.submit(f, envelope, randomUUID()))) throw new TaskmeshError('BAD_ENVELOPE', `task id ${f.id} already exists`);
    return f.id;
  }

  /** The task's record, or null when there is no such task. */
  async status(id: string): Promise<TaskRecord | null> {
    return parseRecord(await this.redis.hgetall(this.keys.task(id)));
  }

  /**
   * Resolves with the record once the task is terminal. A clean_end task whose record was deleted
   * after END resolves with a record built from the last one seen, state END and no result.
   */
  async wait(id: string, opts: WaitOptions = {}): Promise<TaskRecord> {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    let last: TaskRecord | null = null;
    let delay = 20;
    for (;;) {
      const rec = await this.status(id);
      if (rec && isTerminal(rec.state)) return rec;
      if (!rec) {
        if (last?.clean_end) return { ...last, state: 'END', result: null, ended_at: Date.now() };
        throw new UnknownTaskError(id);
      }
      last = rec;
      if (opts.signal?.aborted) throw new TaskmeshError('TIMEOUT', 'wait aborted');
      const left = deadline - Date.now();
      if (left <= 0) throw new TaskmeshError('TIMEOUT', `task ${id} is still ${rec.state}`);
      await new Promise((r) => setTimeout(r, Math.min(delay, left)));
      delay = Math.min(delay * 2, 250);
    }
  }

  /**
   * Calls `handler` for every task named `name` that reaches a terminal state (END, FAILED,
   * CANCELLED), at least once, with its record (the forerunner's onComplete hooks). Durable: the
   * subscription is a consumer group in Redis, so registering again after a restart, with the
   * same `group`, delivers what ended meanwhile; a handler that throws gets the task again.
   * One wait for one id is `wait(id)`.
   */
  onComplete(name: string, handler: (record: TaskRecord) => unknown, opts: OnCompleteOptions = {}): Subscription {
    const sub = subscribeCompletions(this.redisConfig, this.keys, name, handler, opts);
    this.subscriptions.add(sub);
    return {
      close: async () => {
        this.subscriptions.delete(sub);
        await sub.close();
      },
    };
  }

  /**
   * Cancels a task, durably: recorded in Redis first, then routed to the worker that runs it.
   * Returns the state right after the request: CANCELLED, RUNNING (the worker is being told),
   * or the terminal state it already had.
   */
  async cancel(id: string): Promise<TaskState> {
    // The script needs the worker's keys; it answers RETRY if the task moved on in between.
    for (;;) {
      const [name, worker] = await this.redis.hmget(this.keys.task(id), 'name', 'worker');
      if (name === null || name === undefined) throw new UnknownTaskError(id);
      const state = await this.scripts.cancel(id, name, worker ?? '');
      if (state === null) throw new UnknownTaskError(id);
      if (state !== 'RETRY') return state as TaskState;
    }
  }

  /**
   * Runs a FAILED or CANCELLED task again with a fresh attempt budget (a new epoch, so nothing of
   * an earlier attempt can land). Returns QUEUED, or the state it has when it was neither.
   */
  async retry(id: string): Promise<TaskState> {
    const name = await this.redis.hget(this.keys.task(id), 'name');
    if (name === null) throw new UnknownTaskError(id);
    const state = await this.scripts.retry(id, name);
    if (state === null) throw new UnknownTaskError(id);
    return state as TaskState;
  }

  /** Every known task, optionally only those in one state. */
  async list(filter: { state?: TaskState } = {}): Promise<TaskRecord[]> {
    const out: TaskRecord[] = [];
    let cursor = '0';
    do {
      const [next, ids] = await this.redis.sscan(this.keys.tasks, cursor, 'COUNT', 500);
      cursor = next;
      if (ids.length === 0) continue;
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hgetall(this.keys.task(id));
      const replies = (await pipe.exec()) ?? [];
      for (const [err, h] of replies) {
        if (err) throw err;
        const rec = parseRecord(h as Record<string, string>);
        if (rec && (!filter.state || rec.state === filter.state)) out.push(rec);
      }
    } while (cursor !== '0');
    return out.sort((a, b) => (a.created_at ?? 0) - (b.created_at ?? 0));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.subscriptions].map((s) => s.close()));
      if (this.ownsRedis) await closeRedis(this.redis);
    })();
    return this.closing;
  }
}
