/**
 * RedisStore: the Store API on the data model of SPEC section 2, through the same Lua scripts the
 * distributor and workers use (it adds only the Store's own operations: create into a ready
 * queue, unfenced fulfil, the notification queue).
 *
 * - A job is a task record of one name (`name`, default `job`): PENDING while not terminal,
 *   FULFILLED when END (its `result` is the value; FAILED or CANCELLED read as FULFILLED with the
 *   value `{state, error}`). Taskmesh workers that register that name run store jobs too.
 * - `claim` is the assign script, for a worker id of the claim's own (`store-<store>-<n>`), whose
 *   hash holds the lease length (`lease_ms`). Renewal is that hash's heartbeat plus the start
 *   script (fenced: a lost attempt is 'taken'). An expired claim is requeued by the requeue
 *   script's stale rule (it reads `lease_ms`), by the next claimer or by any distributor.
 * - `fulfill` with a lease is the finish script, fenced on the claim's (epoch, assignment);
 *   `release` is give-back then requeue.
 * - The notification queue: `notify:<id>` (targets in order), `notify-pending`, and leases in
 *   `notify-leases`, each a compare-and-set.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

import type { RedisConfig } from '../config';
import { Keys } from '../keys';
import { closeRedis, createRedis } from '../redis';
import { Scripts, type Fence } from '../scripts';
import { ClaimHandle, NotificationHandle } from './handles';
import { LeaseHandle, canonicalJson, checkJobId, cloneJson, leaseMsOf, type LeaseBackend } from './lease';
import {
  StoreError,
  type Claim,
  type CreateOptions,
  type FulfillResult,
  type Job,
  type JsonValue,
  type Lease,
  type LeaseOptions,
  type Notification,
  type Store,
} from './types';

export interface RedisStoreOptions {
  /** `redis.*` settings (a `client` there is shared, never closed). */
  redis: RedisConfig;
  /** The task name of this store's jobs. @default 'job' */
  name?: string;
}

/** Candidates read per claim or pull. */
const WINDOW = 20;

function isPlainObject(v: JsonValue): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string | undefined): JsonValue {
  if (text === undefined || text === '') return null;
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

/** A claim's token: which worker id holds it and its fence (opaque to callers). */
function encodeToken(workerId: string, f: Fence): string {
  return `${workerId}|${f.epoch}|${f.assignment}`;
}

function decodeToken(token: string): { workerId: string; fence: Fence } | null {
  const [workerId, epoch, assignment] = token.split('|');
  if (!workerId || epoch === undefined || !assignment) return null;
  return { workerId, fence: { epoch: Number(epoch), assignment } };
}

export class RedisStore implements Store {
  readonly name: string;
  readonly keys: Keys;
  private readonly redis: Redis;
  private readonly owned: boolean;
  private readonly scripts: Scripts;
  private readonly storeId = randomUUID().slice(0, 8);
  private claims = 0;
  private readonly live = new Set<LeaseHandle>();
  private readonly workBackend: LeaseBackend;
  private readonly noteBackend: LeaseBackend;

  constructor(opts: RedisStoreOptions) {
    this.name = opts.name ?? 'job';
    this.keys = new Keys(opts.redis.prefix);
    this.owned = !opts.redis.client;
    this.redis = opts.redis.client ?? createRedis(opts.redis, { name: 'taskmesh-store' });
    this.scripts = new Scripts(this.redis, this.keys);
    this.workBackend = {
      renew: async (id, token, leaseMs) => {
        const t = decodeToken(token);
        if (!t) return 'taken';
        const now = Date.now();
        // The fenced touch and the claim's heartbeat go out together (one round trip).
        const hash = this.keys.worker(t.workerId);
        const [current] = await Promise.all([
          this.scripts.start(id, t.fence, now),
          this.redis
            .multi()
            .hset(hash, 'updated_at', now)
            .pexpire(hash, leaseMs * 3)
            .exec(),
        ]);
        return current ? now + leaseMs : 'taken';
      },
      release: async (id, token) => {
        const t = decodeToken(token);
        if (!t) return;
        const fence = await this.scripts.giveBack(id, t.workerId);
        if (fence && fence.epoch === t.fence.epoch) {
          await this.scripts.requeue(id, this.name, t.workerId, fence, 'stopped', { backoffMs: 1000, backoffMaxMs: 60000, rejectDelayMs: 0 });
        }
        await this.redis.del(this.keys.worker(t.workerId));
      },
    };
    this.noteBackend = {
      renew: async (id, token, leaseMs) => {
        const until = Date.now() + leaseMs;
        return (await this.scripts.storeNoteLease(id, token, 'renew', until)) ? until : 'taken';
      },
      release: async (id, token) => {
        await this.scripts.storeNoteLease(id, token, 'release');
      },
    };
  }

  async create(request: JsonValue, opts: CreateOptions = {}): Promise<Job> {
    const id = opts.id ?? randomUUID();
    checkJobId(id);
    const req = cloneJson(request);
    const config = isPlainObject(req) ? req : {};
    if (!(await this.scripts.storeCreate(id, this.name, JSON.stringify(config), JSON.stringify(req))))
      throw new StoreError('JOB_EXISTS', `job ${id} already exists`);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<Job | undefined> {
    const [[, h], [, targets]] = (await this.redis.multi().hgetall(this.keys.task(id)).zrange(this.keys.notify(id), '0', '-1').exec()) as [
      [unknown, Record<string, string>],
      [unknown, string[]],
    ];
    if (!h?.id) return undefined;
    const value = this.valueOf(h.state ?? '', h.result, h.error);
    return {
      id,
      state: value === undefined ? 'PENDING' : 'FULFILLED',
      request: h.request !== undefined ? parseJson(h.request) : parseJson(h.config),
      ...(value !== undefined ? { value, fulfilledAt: Number(h.ended_at) } : {}),
      createdAt: Number(h.created_at),
      waiting: targets.map((t) => parseJson(t)),
    };
  }

  async claim(opts?: LeaseOptions): Promise<Claim | undefined> {
    const leaseMs = leaseMsOf(opts);
    // One worker id (and hash) for this claim, whichever candidate it gets. The hash exists
    // before the attempt does, so no watch loop ever sees the attempt without it.
    const workerId = `store-${this.storeId}-${++this.claims}`;
    const hash = this.keys.worker(workerId);
    let written = false;
    for (let round = 0; round < 2; round++) {
      const ids = await this.redis.zrange(this.keys.ready(this.name), '0', String(WINDOW - 1));
      for (const id of ids) {
        if (!written) {
          await this.redis
            .multi()
            .hset(hash, { id: workerId, updated_at: Date.now(), lease_ms: leaseMs })
            .pexpire(hash, leaseMs * 3)
            .exec();
          written = true;
        }
        const c = await this.tryClaim(id, workerId, leaseMs, opts);
        if (c) return c;
      }
      // Nothing runnable: put back what expired claims hold, then look once more.
      if (round === 0 && !(await this.requeueExpired())) break;
    }
    if (written) await this.redis.del(hash);
    return undefined;
  }

  async fulfill(id: string, value: JsonValue, lease?: Lease): Promise<FulfillResult> {
    const json = JSON.stringify(cloneJson(value));
    if (lease) {
      const t = decodeToken(lease.token);
      if (!t) return 'LEASE_LOST';
      const r = await this.scripts.finish(id, t.workerId, t.fence, 'END', json);
      if (r.result === 'recorded') return 'FULFILLED';
      if (r.state === '') throw new StoreError('JOB_NOT_FOUND', `unknown job id: ${id}`);
      return r.result === 'already' && r.state === 'END' ? 'ALREADY_FULFILLED' : 'LEASE_LOST';
    }
    for (;;) {
      const worker = await this.redis.hget(this.keys.task(id), 'worker');
      const r = await this.scripts.storeFulfill(id, this.name, worker ?? '', json);
      if (r === 'NOTFOUND') throw new StoreError('JOB_NOT_FOUND', `unknown job id: ${id}`);
      if (r !== 'RETRY') return r === 'FULFILLED' ? 'FULFILLED' : 'ALREADY_FULFILLED';
    }
  }

  async release(lease: Lease): Promise<void> {
    await lease.release();
  }

  async queue(id: string, target: JsonValue): Promise<void> {
    if (!(await this.scripts.storeQueue(id, canonicalJson(cloneJson(target))))) throw new StoreError('JOB_NOT_FOUND', `unknown job id: ${id}`);
  }

  async unqueue(id: string, target: JsonValue): Promise<void> {
    await this.scripts.storeUnqueue(id, [canonicalJson(target)]);
  }

  async unqueueAll(id: string, targets: readonly JsonValue[]): Promise<void> {
    if (targets.length > 0)
      await this.scripts.storeUnqueue(
        id,
        targets.map((t) => canonicalJson(t)),
      );
  }

  async pullNotification(opts?: LeaseOptions): Promise<Notification | undefined> {
    const leaseMs = leaseMsOf(opts);
    const ids = await this.redis.zrange(this.keys.notifyPending, '0', '99');
    const token = randomUUID();
    const now = Date.now();
    const n = await this.scripts.storePull(ids, token, now + leaseMs, now);
    if (!n) return undefined;
    const value = this.valueOf(n.state, n.result, n.error) ?? null;
    return new NotificationHandle(
      n.id,
      value,
      n.targets.map((t) => parseJson(t)),
      token,
      now + leaseMs,
      opts,
      this.noteBackend,
      this.live,
      (note, d) => this.done(note, d),
    );
  }

  async done(notification: Notification, delivered: readonly JsonValue[]): Promise<void> {
    await this.unqueueAll(notification.id, delivered);
    await notification.release();
  }

  async close(): Promise<void> {
    for (const h of [...this.live]) h.stop();
    if (this.owned) await closeRedis(this.redis);
  }

  /** The Store value of a record's state: undefined while PENDING. */
  private valueOf(state: string, result: string | undefined, error: string | undefined): JsonValue | undefined {
    if (state === 'END') return parseJson(result);
    if (state === 'FAILED' || state === 'CANCELLED') return { state, error: error ?? '' };
    return undefined;
  }

  /** Claims one task for the claim's worker id, whose hash holds the lease length. */
  private async tryClaim(id: string, workerId: string, leaseMs: number, opts: LeaseOptions | undefined): Promise<Claim | undefined> {
    const now = Date.now();
    const assignment = randomUUID();
    const r = await this.scripts.assign(id, this.name, workerId, `store-${this.storeId}`, assignment, now);
    if (r.kind !== 'assigned') return undefined;
    const job = await this.get(id);
    return new ClaimHandle(job!, encodeToken(workerId, { epoch: r.epoch, assignment }), now + leaseMs, opts, this.workBackend, this.live);
  }

  /** Requeues the attempts of claims whose lease ran out (any store's); true if one was. */
  private async requeueExpired(): Promise<boolean> {
    const workers = (await this.redis.smembers(this.keys.assigned)).filter((w) => w.startsWith('store-'));
    if (workers.length === 0) return false;
    const pipe = this.redis.pipeline();
    for (const w of workers) pipe.hmget(this.keys.worker(w), 'updated_at', 'lease_ms');
    const rows = (await pipe.exec()) ?? [];
    const now = Date.now();
    let any = false;
    for (let i = 0; i < workers.length; i++) {
      const [beat, lease] = (rows[i]?.[1] ?? []) as (string | null)[];
      if (beat && lease && Number(beat) >= now - Number(lease)) continue;
      const w = workers[i]!;
      const ids = await this.redis.smembers(this.keys.workerTasks(w));
      const fp = this.redis.pipeline();
      for (const id of ids) fp.hmget(this.keys.task(id), 'epoch', 'assignment');
      const fences = (await fp.exec()) ?? [];
      // The requeue script applies the stale rule itself (it reads lease_ms); this only saves it a call per live claim.
      const results = await Promise.all(
        ids.map((id, k) => {
          const [epoch, assignment] = (fences[k]?.[1] ?? []) as (string | null)[];
          return this.scripts.requeue(id, this.name, w, { epoch: Number(epoch), assignment: assignment ?? '' }, 'stale', {
            backoffMs: 1000,
            backoffMaxMs: 60000,
          });
        }),
      );
      if (results.includes('requeued')) any = true;
    }
    await this.scripts.pruneAssigned(workers);
    return any;
  }
}
