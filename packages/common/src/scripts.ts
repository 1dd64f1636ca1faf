/**
 * The Lua scripts (in ../lua, one file each, named `name-KEYCOUNT.lua`) behind typed methods.
 * Each method builds the KEYS a script needs and maps its return codes to meanings, in this one place.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { Keys } from './keys';

const LUA_DIR = join(__dirname, '..', 'lua');

type Arg = string | number | Buffer;
type ScriptFn = (...args: Arg[]) => Promise<unknown>;

function defineAll(redis: Redis): Record<string, ScriptFn> {
  const out: Record<string, ScriptFn> = {};
  for (const file of readdirSync(LUA_DIR)) {
    const m = /^([a-z-]+?)(?:-(\d+))?\.lua$/.exec(file);
    if (!m) continue;
    const name = `tm_${m[1]!.replace(/-/g, '_')}`;
    const numberOfKeys = m[2] === undefined ? undefined : Number(m[2]);
    if (!(name in redis)) redis.defineCommand(name, { lua: readFileSync(join(LUA_DIR, file), 'utf8'), ...(numberOfKeys !== undefined ? { numberOfKeys } : {}) });
    out[m[1]!] = (...args) => (redis as unknown as Record<string, ScriptFn>)[name]!(...args);
  }
  return out;
}

export interface Fence {
  epoch: number;
  assignment: string;
}

export interface EnvelopeFields {
  id: string;
  name: string;
  config: string;
  max_attempts: number;
  max_stalls: number;
  priority: number;
  state_optional: boolean;
  clean_end: boolean;
}

export type IntakeResult = { kind: 'queued'; id: string } | { kind: 'duplicate' } | { kind: 'dead'; reason: string };
export type AssignResult = { kind: 'assigned'; epoch: number; attempt: number; config: string; stateOptional: boolean; cleanEnd: boolean } | { kind: 'taken' } | { kind: 'not-queued' };
export type FinishOutcome = 'END' | 'ERROR' | 'CANCELLED' | 'STOPPED';
export type FinishResult = 'recorded' | 'already' | 'failed' | 'retry' | 'refused';
export type RequeueMode = 'down' | 'stale' | 'stopped' | 'rejected';
export type RequeueResult = 'requeued' | 'cancelled' | 'failed' | 'skipped';
export type HeartbeatResult = { kind: 'unregistered' } | { kind: 'ok'; lost: number[]; cancel: number[]; unknown: string[] };

const flag = (b: boolean): string => (b ? '1' : '0');

export class Scripts {
  private readonly fns: Record<string, ScriptFn>;

  constructor(readonly redis: Redis, readonly keys: Keys) {
    this.fns = defineAll(redis);
  }

  private call(name: string, ...args: Arg[]): Promise<unknown> {
    const fn = this.fns[name];
    if (!fn) throw new Error(`Lua script ${name} is missing from ${LUA_DIR}`);
    return fn(...args);
  }

  async submit(e: EnvelopeFields, envelopeJson: string, token: string, now = Date.now()): Promise<boolean> {
    const k = this.keys;
    const r = await this.call('submit', k.tasks, k.task(e.id), k.newTask, e.id, e.name, e.config, e.max_attempts, e.max_stalls, e.priority, flag(e.state_optional), flag(e.clean_end), now, envelopeJson, token);
    return r === 1;
  }

  /** `raw` is the list entry's exact bytes: the script removes it from the processing list by value. */
  async intake(processing: string, raw: Buffer, e: EnvelopeFields, distributorId: string, now = Date.now()): Promise<IntakeResult> {
    const k = this.keys;
    const [code, detail] = (await this.call('intake', processing, k.tasks, k.task(e.id), k.ready(e.name), k.dead, k.seq, raw, e.id, e.name, e.config, e.max_attempts, e.max_stalls, e.priority, flag(e.state_optional), flag(e.clean_end), now, distributorId, k.channel)) as [number, string];
    if (code === 1) return { kind: 'queued', id: detail };
    if (code === -1) return { kind: 'dead', reason: detail };
    return { kind: 'duplicate' };
  }

  /** Dead-letters an envelope; a never-run QUEUED record it named (`taskId`) becomes FAILED. */
  async deadletter(processing: string, raw: Buffer, entryJson: string, reason: string, taskId: string | null, now = Date.now()): Promise<void> {
    await this.call('deadletter', processing, this.keys.dead, taskId ? this.keys.task(taskId) : this.keys.dead, raw, entryJson, reason, now);
  }

  async assign(id: string, name: string, workerId: string, distributorId: string, assignment: string, now = Date.now()): Promise<AssignResult> {
    const k = this.keys;
    const [a, b, config, optional, cleanEnd] = (await this.call('assign', k.ready(name), k.task(id), k.workerTasks(workerId), id, workerId, distributorId, assignment, now)) as [number, number, string?, string?, string?];
    if (a === -1) return { kind: 'taken' };
    if (a === -2) return { kind: 'not-queued' };
    return { kind: 'assigned', epoch: a, attempt: b, config: config ?? '{}', stateOptional: optional === '1', cleanEnd: cleanEnd === '1' };
  }

  async start(id: string, fence: Fence, now = Date.now()): Promise<boolean> {
    return (await this.call('start', this.keys.task(id), fence.epoch, fence.assignment, now)) === 1;
  }

  /** How an attempt ended; `state` is the record's state after the call (what was really recorded). */
  async finish(id: string, workerId: string, fence: Fence, outcome: FinishOutcome, payload: string, stopReason = '', now = Date.now()): Promise<{ result: FinishResult; state: string }> {
    const [r, state] = (await this.call('finish', this.keys.task(id), this.keys.workerTasks(workerId), fence.epoch, fence.assignment, outcome, payload, now, stopReason, id)) as [number, string];
    return { result: (['refused', 'recorded', 'already', 'failed', 'retry'] as const)[r] ?? 'refused', state };
  }

  /** Gives back a task recorded against a worker that does not run it; returns its fence if it did. */
  async giveBack(id: string, workerId: string, now = Date.now()): Promise<Fence | null> {
    const r = (await this.call('give-back', this.keys.task(id), this.keys.workerTasks(workerId), id, workerId, now)) as [number, number?, string?];
    return r[0] === 1 ? { epoch: r[1]!, assignment: r[2] ?? '' } : null;
  }

  async requeue(
    id: string,
    name: string,
    workerId: string,
    fence: Fence,
    mode: RequeueMode,
    opts: { staleBefore?: number; backoffMs: number; backoffMaxMs: number; rejectDelayMs?: number; now?: number },
  ): Promise<RequeueResult> {
    const k = this.keys;
    const now = opts.now ?? Date.now();
    const r = (await this.call('requeue', k.task(id), k.ready(name), k.delayed, k.workerTasks(workerId), k.worker(workerId), k.seq, id, fence.epoch, fence.assignment, mode, now, opts.staleBefore ?? 0, opts.backoffMs, opts.backoffMaxMs, k.channel, workerId, opts.rejectDelayMs ?? 0)) as number;
    return (['skipped', 'requeued', 'cancelled', 'failed'] as const)[r] ?? 'skipped';
  }

  async promote(id: string, name: string, now = Date.now()): Promise<boolean> {
    return (await this.call('promote', this.keys.delayed, this.keys.task(id), this.keys.ready(name), this.keys.seq, id, now, this.keys.channel)) === 1;
  }

  async heartbeat(workerId: string, ttlMs: number, tasks: ReadonlyArray<{ id: string } & Fence>, now = Date.now()): Promise<HeartbeatResult> {
    const k = this.keys;
    const keys = [k.worker(workerId), k.workerTasks(workerId), ...tasks.map((t) => k.task(t.id))];
    const args: (string | number)[] = [now, ttlMs, tasks.length];
    for (const t of tasks) args.push(t.id, t.epoch, t.assignment);
    const r = (await this.call('heartbeat', keys.length, ...keys, ...args)) as [number, number[]?, number[]?, string[]?];
    if (r[0] === -1) return { kind: 'unregistered' };
    return { kind: 'ok', lost: (r[1] ?? []).map((i) => i - 1), cancel: (r[2] ?? []).map((i) => i - 1), unknown: r[3] ?? [] };
  }

  async touchWorkers(workerIds: readonly string[], ttlMs: number, now = Date.now()): Promise<number> {
    if (workerIds.length === 0) return 0;
    return (await this.call('touch-workers', workerIds.length, ...workerIds.map((w) => this.keys.worker(w)), now, ttlMs)) as number;
  }

  /** Returns the state after the call, or null for an unknown task. */
  async cancel(id: string, name: string, workerId: string, now = Date.now()): Promise<string | null> {
    const k = this.keys;
    const r = (await this.call('cancel', k.task(id), k.ready(name), k.delayed, k.workerTasks(workerId || '-'), id, now, k.channel)) as string;
    return r === '' ? null : r;
  }

  async cleanEnd(id: string): Promise<boolean> {
    return (await this.call('clean-end', this.keys.task(id), this.keys.tasks, id)) === 1;
  }
}
