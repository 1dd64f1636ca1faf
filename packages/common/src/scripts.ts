/**
 * The Lua scripts (in ../lua, one file each, named `name[-KEYCOUNT].lua`; a name without a count
 * takes a variable number of keys) behind typed methods. Each method builds the KEYS a script
 * needs and maps its return codes to meanings, in this one place. `lua/lib/prelude.lua` is
 * prepended to every script: the Lua home of the terminal states, the ready score, the stale rule.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { Keys } from './keys';
import { ScriptError } from './errors';
import { TASK_STATES, type TaskState } from './record';

const LUA_DIR = join(__dirname, '..', 'lua');

type Arg = string | number | Buffer;
type ScriptFn = (...args: Arg[]) => Promise<unknown>;

interface Defined {
  fn: ScriptFn;
  /** Fixed key count, or undefined when the caller passes it first. */
  keys: number | undefined;
}

let prelude: string | undefined;

/** A script with the shared prelude (terminal states, ready score, stale rule...) in front. */
export function withPrelude(lua: string): string {
  prelude ??= readFileSync(join(LUA_DIR, 'lib', 'prelude.lua'), 'utf8');
  return `${prelude}\n${lua}`;
}

function defineAll(redis: Redis): Record<string, Defined> {
  const out: Record<string, Defined> = {};
  for (const file of readdirSync(LUA_DIR)) {
    const m = /^([a-z-]+?)(?:-(\d+))?\.lua$/.exec(file);
    if (!m) continue;
    const name = `tm_${m[1]!.replace(/-/g, '_')}`;
    const numberOfKeys = m[2] === undefined ? undefined : Number(m[2]);
    if (!(name in redis))
      redis.defineCommand(name, { lua: withPrelude(readFileSync(join(LUA_DIR, file), 'utf8')), ...(numberOfKeys !== undefined ? { numberOfKeys } : {}) });
    const target = redis as unknown as Record<string, ScriptFn>;
    out[m[1]!] = { fn: (...args) => target[name]!(...args), keys: numberOfKeys };
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

/**
 * One envelope of an intake batch: its exact bytes in the processing list (as text when they are
 * valid UTF-8, which round-trips byte for byte and lets the client encode the call as one string)
 * and what they say.
 */
export interface IntakeItem {
  raw: Buffer | string;
  fields: EnvelopeFields;
}

/** queuedAt: when the attempt became QUEUED (ms; null on a re-sent call), for the queue-wait metric. */
export interface Assigned {
  kind: 'assigned';
  epoch: number;
  attempt: number;
  config: string;
  stateOptional: boolean;
  cleanEnd: boolean;
  queuedAt: number | null;
}
/** assigned: the intake script handed the task straight to the worker named for it. */
export type IntakeResult = { kind: 'queued'; id: string } | { kind: 'duplicate' } | { kind: 'dead'; reason: string } | Assigned;
export type AssignResult = Assigned | { kind: 'taken' } | { kind: 'not-queued' };
/** The worker slot a distributor holds for a task of an intake batch, and the assignment id it would get. */
export interface Handover {
  worker: string;
  assignment: string;
}

type AssignedRow = [number, number?, string?, string?, string?, (string | number)?];

function assigned([epoch, attempt, config, optional, cleanEnd, queuedAt]: AssignedRow): Assigned {
  return {
    kind: 'assigned',
    epoch,
    attempt: attempt ?? 0,
    config: config ?? '{}',
    stateOptional: optional === '1',
    cleanEnd: cleanEnd === '1',
    queuedAt: queuedAt ? Number(queuedAt) : null,
  };
}
export type FinishOutcome = 'END' | 'ERROR' | 'CANCELLED' | 'STOPPED';
export type FinishResult = 'recorded' | 'already' | 'failed' | 'retry' | 'refused';
/** What a finish call reports: its result, and the record's state after it (what was really recorded). */
export interface Finished {
  result: FinishResult;
  state: string;
}
export interface FinishItem {
  id: string;
  fence: Fence;
  outcome: FinishOutcome;
  /** Result JSON (END) or error message. */
  payload: string;
  stopReason?: string;
}
export type RequeueMode = 'down' | 'stale' | 'stopped' | 'rejected';
export type RequeueResult = 'requeued' | 'cancelled' | 'failed' | 'skipped';
/** An inbox entry: a run of this worker was taken over or cancelled. */
export interface InboxEntry {
  kind: 'lost' | 'cancel';
  id: string;
  epoch: number;
}
export type HeartbeatResult = { kind: 'unregistered' } | { kind: 'ok'; inbox: InboxEntry[]; indexed: number };

const flag = (b: boolean): string => (b ? '1' : '0');

const STATE_REPLIES = Object.fromEntries(TASK_STATES.map((st) => [st, st])) as { readonly [K in TaskState]: K };

/**
 * Every script's documented status replies (the `Returns` of each .lua header) and what they
 * mean: the one place Lua return codes become TypeScript values. Replies that carry data besides
 * a status (an epoch, inbox entries, a dead-letter reason) are read by the method, which passes
 * the status part through here. A reply outside the table is a ScriptError SCRIPT_REPLY_INVALID:
 * a script and its caller out of step, never guessed at.
 */
export const SCRIPT_REPLIES = {
  submit: { 1: 'created', 0: 'exists' },
  intake: { 1: 'queued', 0: 'duplicate' },
  deadletter: { 1: 'moved', 0: 'already' },
  /** A positive reply is the new epoch: assigned. */
  assign: { [-1]: 'taken', [-2]: 'not-queued' },
  start: { 1: 'accepted', 0: 'refused' },
  finish: { 0: 'refused', 1: 'recorded', 2: 'already', 3: 'failed', 4: 'retry' },
  'give-back': { 1: 'given-back', 0: 'dropped' },
  requeue: { 0: 'skipped', 1: 'requeued', 2: 'cancelled', 3: 'failed' },
  promote: { 1: 'promoted', 0: 'not-due' },
  heartbeat: { 1: 'ok', [-1]: 'unregistered' },
  cancel: { ...STATE_REPLIES, RETRY: 'RETRY', '': 'unknown' },
  retry: { ...STATE_REPLIES, '': 'unknown' },
  'clean-end': { 1: 'deleted', 0: 'not-applicable' },
  'store-create': { 1: 'created', 0: 'exists' },
  'store-fulfill': { FULFILLED: 'FULFILLED', ALREADY: 'ALREADY', RETRY: 'RETRY', NOTFOUND: 'NOTFOUND' },
  'store-queue': { 1: 'queued', 0: 'unknown' },
  'store-note-lease': { 1: 'done', 0: 'lost' },
} as const;

export type ScriptName = keyof typeof SCRIPT_REPLIES;
/** What a script's status reply means, e.g. ReplyOf<'finish'> is 'refused' | 'recorded' | .... */
export type ReplyOf<S extends ScriptName> = (typeof SCRIPT_REPLIES)[S][keyof (typeof SCRIPT_REPLIES)[S]];

/** Maps a script's status reply to its meaning; throws ScriptError SCRIPT_REPLY_INVALID for anything else. */
export function scriptReply<S extends ScriptName>(script: S, raw: unknown): ReplyOf<S> {
  const table = SCRIPT_REPLIES[script] as Readonly<Record<string, string>>;
  const key = typeof raw === 'number' || typeof raw === 'string' ? String(raw) : undefined;
  if (key === undefined || !Object.hasOwn(table, key)) {
    throw new ScriptError(
      'SCRIPT_REPLY_INVALID',
      script,
      `Lua script ${script} replied ${JSON.stringify(raw) ?? String(raw)}, which is none of its documented replies`,
    );
  }
  return table[key] as ReplyOf<S>;
}

function parseInbox(raw: string): InboxEntry | null {
  const [kind, id, epoch] = raw.split(' ');
  if ((kind !== 'lost' && kind !== 'cancel') || !id) return null;
  return { kind, id, epoch: Number(epoch) };
}

/** How ready queues are scored: priority then arrival, or arrival only (queue.kind fifo). */
export type ReadyOrder = 'priority' | 'fifo';

export class Scripts {
  private readonly fns: Record<string, Defined>;

  /** @param order how this process scores the ready queues it writes (every distributor of a mesh alike) */
  constructor(
    readonly redis: Redis,
    readonly keys: Keys,
    readonly order: ReadyOrder = 'priority',
  ) {
    this.fns = defineAll(redis);
  }

  /** Calls a script; `keys` are passed as KEYS and `args` as ARGV. */
  private call(name: string, keys: Arg[], args: Arg[]): Promise<unknown> {
    const d = this.fns[name];
    if (!d) throw new Error(`Lua script ${name} is missing from ${LUA_DIR}`);
    if (d.keys !== undefined && d.keys !== keys.length) throw new Error(`Lua script ${name} takes ${d.keys} keys, got ${keys.length}`);
    return d.keys === undefined ? d.fn(keys.length, ...keys, ...args) : d.fn(...keys, ...args);
  }

  /** Like call, with Buffer replies (for envelopes that must be found again by their exact bytes). */
  private callBuffer(name: string, keys: Arg[], args: Arg[]): Promise<unknown> {
    const target = this.redis as unknown as Record<string, ScriptFn>;
    return target[`tm_${name.replace(/-/g, '_')}Buffer`]!(...keys, ...args);
  }

  async submit(e: EnvelopeFields, envelopeJson: string, token: string, now = Date.now()): Promise<boolean> {
    const k = this.keys;
    const r = await this.call(
      'submit',
      [k.tasks, k.task(e.id), k.newTask],
      [e.id, e.name, e.config, e.max_attempts, e.max_stalls, e.priority, flag(e.state_optional), flag(e.clean_end), now, envelopeJson, token],
    );
    return scriptReply('submit', r) === 'created';
  }

  /** Moves up to `max` envelopes from new-task into a processing list; oldest first, as bytes. */
  async take(processing: string, max: number): Promise<Buffer[]> {
    return (await this.callBuffer('take', [this.keys.newTask, processing], [max])) as Buffer[];
  }

  /**
   * Records a batch of envelopes; one result per item, in order. With `handover` (one slot per
   * item), a task whose ready queue is empty starts on its slot's worker at once (intake.lua).
   */
  async intake(
    processing: string,
    items: readonly IntakeItem[],
    distributorId: string,
    handover?: readonly Handover[],
    now = Date.now(),
  ): Promise<IntakeResult[]> {
    if (items.length === 0) return [];
    if (handover && handover.length !== items.length) throw new Error(`intake: ${handover.length} hand-over slots for ${items.length} envelopes`);
    const k = this.keys;
    const keys: Arg[] = [processing, k.tasks, k.dead, k.seq, k.assigned];
    const args: Arg[] = [now, distributorId, k.channel, this.order, flag(handover !== undefined)];
    items.forEach(({ raw, fields: e }, i) => {
      keys.push(k.task(e.id), k.ready(e.name));
      args.push(raw, e.id, e.name, e.config, e.max_attempts, e.max_stalls, e.priority, flag(e.state_optional), flag(e.clean_end));
      const h = handover?.[i];
      if (h) {
        keys.push(k.workerTasks(h.worker));
        args.push(h.worker, h.assignment);
      }
    });
    const r = (await this.call('intake', keys, args)) as (number | string | AssignedRow)[];
    return items.map((it, i): IntakeResult => {
      const v = r[i];
      // A string is the reason the envelope was dead-lettered, a row a hand-over, a number a status.
      if (typeof v === 'string') return { kind: 'dead', reason: v };
      if (Array.isArray(v)) return assigned(v);
      return scriptReply('intake', v) === 'queued' ? { kind: 'queued', id: it.fields.id } : { kind: 'duplicate' };
    });
  }

  /** Dead-letters an envelope; a never-run QUEUED record it named (`taskId`) becomes FAILED. */
  async deadletter(processing: string, raw: Buffer, entryJson: string, reason: string, taskId: string | null, now = Date.now()): Promise<void> {
    const k = this.keys;
    scriptReply(
      'deadletter',
      await this.call('deadletter', [processing, k.dead, taskId ? k.task(taskId) : k.dead, k.ended, k.completed], [raw, entryJson, reason, now, taskId ?? '']),
    );
  }

  /** Claims QUEUED tasks of one name for one worker; one result per task, in order. */
  async assignMany(
    name: string,
    workerId: string,
    distributorId: string,
    tasks: ReadonlyArray<{ id: string; assignment: string }>,
    now = Date.now(),
  ): Promise<AssignResult[]> {
    if (tasks.length === 0) return [];
    const k = this.keys;
    const keys: Arg[] = [k.ready(name), k.workerTasks(workerId), k.assigned];
    const args: Arg[] = [workerId, distributorId, now];
    for (const t of tasks) {
      keys.push(k.task(t.id));
      args.push(t.id, t.assignment);
    }
    const rows = (await this.call('assign', keys, args)) as AssignedRow[];
    return rows.map((row) => (row[0] <= 0 ? { kind: scriptReply('assign', row[0]) } : assigned(row)));
  }

  async assign(id: string, name: string, workerId: string, distributorId: string, assignment: string, now = Date.now()): Promise<AssignResult> {
    return (await this.assignMany(name, workerId, distributorId, [{ id, assignment }], now))[0]!;
  }

  /**
   * Confirms an attempt is current and touches its updated_at. The assign script already records
   * the start, so a worker does not need this; it stays for workers in other languages and tests.
   */
  async start(id: string, fence: Fence, now = Date.now()): Promise<boolean> {
    return scriptReply('start', await this.call('start', [this.keys.task(id)], [fence.epoch, fence.assignment, now])) === 'accepted';
  }

  /** Records how a batch of one worker's attempts ended; one result per item, in order. */
  async finishMany(workerId: string, items: readonly FinishItem[], now = Date.now()): Promise<Finished[]> {
    if (items.length === 0) return [];
    const k = this.keys;
    const keys: Arg[] = [k.workerTasks(workerId), k.stopped, k.ended, k.clean, k.completed];
    const args: Arg[] = [now];
    for (const it of items) {
      keys.push(k.task(it.id));
      args.push(it.id, it.fence.epoch, it.fence.assignment, it.outcome, it.payload, it.stopReason ?? '');
    }
    const rows = (await this.call('finish', keys, args)) as [number, string][];
    return rows.map(([r, state]) => ({ result: scriptReply('finish', r), state }));
  }

  async finish(id: string, workerId: string, fence: Fence, outcome: FinishOutcome, payload: string, stopReason = '', now = Date.now()): Promise<Finished> {
    return (await this.finishMany(workerId, [{ id, fence, outcome, payload, stopReason }], now))[0]!;
  }

  /** Gives back a task recorded against a worker that does not run it; returns its fence if it did. */
  async giveBack(id: string, workerId: string, now = Date.now()): Promise<Fence | null> {
    const k = this.keys;
    const r = (await this.call('give-back', [k.task(id), k.workerTasks(workerId), k.stopped], [id, workerId, now])) as [number, number?, string?];
    return scriptReply('give-back', r[0]) === 'given-back' ? { epoch: r[1]!, assignment: r[2] ?? '' } : null;
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
    const w = workerId || '-';
    const r = (await this.call(
      'requeue',
      [k.task(id), k.ready(name), k.delayed, k.workerTasks(w), k.worker(w), k.seq, k.stopped, k.inbox(w), k.ended, k.completed],
      [
        id,
        fence.epoch,
        fence.assignment,
        mode,
        now,
        opts.staleBefore ?? 0,
        opts.backoffMs,
        opts.backoffMaxMs,
        k.channel,
        workerId,
        opts.rejectDelayMs ?? 0,
        this.order,
      ],
    )) as number;
    return scriptReply('requeue', r);
  }

  async promote(id: string, name: string, now = Date.now()): Promise<boolean> {
    const k = this.keys;
    return scriptReply('promote', await this.call('promote', [k.delayed, k.task(id), k.ready(name), k.seq], [id, now, k.channel, this.order])) === 'promoted';
  }

  /** A worker's heartbeat: O(1), whatever it runs. */
  async heartbeat(workerId: string, ttlMs: number, running: number, now = Date.now()): Promise<HeartbeatResult> {
    const k = this.keys;
    const r = (await this.call('heartbeat', [k.worker(workerId), k.inbox(workerId), k.workerTasks(workerId)], [now, ttlMs, running])) as [
      number,
      string[]?,
      number?,
    ];
    if (scriptReply('heartbeat', r[0]) === 'unregistered') return { kind: 'unregistered' };
    const inbox = (r[1] ?? []).map(parseInbox).filter((e): e is InboxEntry => e !== null);
    return { kind: 'ok', inbox, indexed: r[2] ?? 0 };
  }

  /** Checks the fences of attempts a worker runs; returns the positions lost and cancelled. */
  async verify(tasks: ReadonlyArray<{ id: string } & Fence>): Promise<{ lost: number[]; cancel: number[] }> {
    if (tasks.length === 0) return { lost: [], cancel: [] };
    const args: Arg[] = [];
    for (const t of tasks) args.push(t.epoch, t.assignment);
    const r = (await this.call(
      'verify',
      tasks.map((t) => this.keys.task(t.id)),
      args,
    )) as [number[]?, number[]?];
    return { lost: (r[0] ?? []).map((i) => i - 1), cancel: (r[1] ?? []).map((i) => i - 1) };
  }

  async touchWorkers(workerIds: readonly string[], ttlMs: number, now = Date.now()): Promise<number> {
    if (workerIds.length === 0) return 0;
    return (await this.call(
      'touch-workers',
      workerIds.map((w) => this.keys.worker(w)),
      [now, ttlMs],
    )) as number;
  }

  /**
   * Returns the state after the call, 'RETRY' when the task moved to another worker than
   * `workerId` since the caller read it, or null for an unknown task.
   */
  async cancel(id: string, name: string, workerId: string, now = Date.now()): Promise<string | null> {
    const k = this.keys;
    const w = workerId || '-';
    const r = scriptReply(
      'cancel',
      await this.call(
        'cancel',
        [k.task(id), k.ready(name), k.delayed, k.workerTasks(w), k.inbox(w), k.stopped, k.ended, k.completed],
        [id, now, k.channel, workerId],
      ),
    );
    return r === 'unknown' ? null : r;
  }

  /** Runs a FAILED or CANCELLED task again; returns 'QUEUED', the state it had otherwise, or null when unknown. */
  async retry(id: string, name: string, now = Date.now()): Promise<string | null> {
    const k = this.keys;
    const r = scriptReply('retry', await this.call('retry', [k.task(id), k.ready(name), k.seq, k.ended, k.clean], [id, now, k.channel, this.order]));
    return r === 'unknown' ? null : r;
  }

  async cleanEnd(id: string): Promise<boolean> {
    const k = this.keys;
    return scriptReply('clean-end', await this.call('clean-end', [k.task(id), k.tasks, k.clean, k.ended], [id])) === 'deleted';
  }

  /** Removes terminal records among `ids` that ended at or before `cutoff`; returns how many. */
  async expire(ids: readonly string[], cutoff: number): Promise<number> {
    if (ids.length === 0) return 0;
    const k = this.keys;
    return (await this.call('expire', [k.tasks, k.ended, ...ids.map((id) => k.task(id))], [cutoff, ...ids])) as number;
  }

  // ---- the Store API on the data model (RedisStore) ------------------------------------------

  /** A new QUEUED record, runnable at once; false when the id exists. */
  async storeCreate(id: string, name: string, configJson: string, requestJson: string, now = Date.now()): Promise<boolean> {
    const k = this.keys;
    return (
      scriptReply(
        'store-create',
        await this.call('store-create', [k.tasks, k.task(id), k.ready(name), k.seq], [id, name, configJson, requestJson, now, k.channel, this.order]),
      ) === 'created'
    );
  }

  /** Unfenced fulfilment (the seed lets anyone fulfil): 'RETRY' when the task moved to another worker than `workerId`. */
  async storeFulfill(id: string, name: string, workerId: string, valueJson: string, now = Date.now()): Promise<'FULFILLED' | 'ALREADY' | 'RETRY' | 'NOTFOUND'> {
    const k = this.keys;
    const w = workerId || '-';
    return scriptReply(
      'store-fulfill',
      await this.call(
        'store-fulfill',
        [k.task(id), k.ready(name), k.delayed, k.stopped, k.ended, k.completed, k.workerTasks(w), k.inbox(w)],
        [id, valueJson, now, workerId],
      ),
    );
  }

  /** Queues a notification target (canonical JSON); false for an unknown task. */
  async storeQueue(id: string, target: string): Promise<boolean> {
    const k = this.keys;
    return scriptReply('store-queue', await this.call('store-queue', [k.task(id), k.notify(id), k.notifyPending, k.notifySeq], [id, target])) === 'queued';
  }

  /** Removes targets; returns how many are still waiting. */
  async storeUnqueue(id: string, targets: readonly string[]): Promise<number> {
    const k = this.keys;
    return (await this.call('store-unqueue', [k.notify(id), k.notifyPending], [id, ...targets])) as number;
  }

  /** Leases the first candidate notification that is ready, or null. */
  async storePull(
    ids: readonly string[],
    token: string,
    expires: number,
    now = Date.now(),
  ): Promise<{ id: string; state: string; result: string; error: string; targets: string[] } | null> {
    if (ids.length === 0) return null;
    const k = this.keys;
    const keys: Arg[] = [k.notifyLeases];
    for (const id of ids) keys.push(k.task(id), k.notify(id));
    const r = (await this.call('store-pull', keys, [now, expires, token, ...ids])) as string[];
    if (r.length === 0) return null;
    const [id, state, result, error, ...targets] = r;
    return { id: id!, state: state!, result: result!, error: error!, targets };
  }

  /** Renews (to `expires`) or releases a notification lease; false when the token lost it. */
  async storeNoteLease(id: string, token: string, mode: 'renew' | 'release', expires = 0): Promise<boolean> {
    return scriptReply('store-note-lease', await this.call('store-note-lease', [this.keys.notifyLeases], [id, token, mode, expires])) === 'done';
  }

  /** Drops workers with an empty task index from the index of workers with tasks. */
  async pruneAssigned(workerIds: readonly string[]): Promise<number> {
    if (workerIds.length === 0) return 0;
    const k = this.keys;
    return (await this.call('prune-assigned', [k.assigned, ...workerIds.map((w) => k.workerTasks(w))], [...workerIds])) as number;
  }
}
