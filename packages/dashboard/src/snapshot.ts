/**
 * What the dashboard reads from Redis about once a second: workers, distributors, queue depths,
 * the tasks assigned to workers, recent failures and the dead list. Progress is not here: it comes
 * live from the workers (live.ts). Every read is bounded (caps below), so a large mesh costs the
 * same few commands per poll, not one per task.
 */
import { isTerminal } from '@taskmesh/common';
import type { Keys, Redis } from '@taskmesh/common/internal';

/** One row per list the page draws; times are ms since the epoch. */
export interface WorkerRow {
  id: string;
  host: string;
  port: number;
  tasks: string[];
  concurrency: number;
  running: number;
  updatedAt: number | null;
}

export interface DistributorRow {
  id: string;
  host: string;
  port: number;
  updatedAt: number | null;
}

export interface AssignedRow {
  id: string;
  name: string;
  state: string;
  worker: string;
  attempts: number;
  startedAt: number | null;
}

export interface FailureRow {
  id: string;
  name: string;
  state: string;
  error: string;
  attempts: number;
  endedAt: number | null;
}

export interface DeadRow {
  reason: string;
  at: number | null;
  distributor: string;
  /** The refused envelope, cut to DEAD_RAW_CHARS. */
  raw: string;
}

export interface Snapshot {
  at: number;
  prefix: string;
  workers: WorkerRow[];
  distributors: DistributorRow[];
  queues: { intake: number; delayed: number; stopped: number; ready: Array<{ name: string; depth: number }> };
  /** Tasks on workers' task indexes (RUNNING, or STOPPED waiting to be requeued), at most MAX_ASSIGNED. */
  assigned: AssignedRow[];
  /** False when there were more than MAX_ASSIGNED: `assigned` is then a sample, not the whole set. */
  assignedComplete: boolean;
  failures: FailureRow[];
  dead: { total: number; recent: DeadRow[] };
}

const MAX_ASSIGNED = 500;
/** How far back in the completed stream recent failures are looked for. */
const COMPLETED_SCAN = 500;
const MAX_FAILURES = 25;
const MAX_DEAD = 20;
const DEAD_RAW_CHARS = 300;
/** Ready queues of names no worker registers are found by SCAN, which walks the keyspace: not every poll. */
const READY_SCAN_EVERY_MS = 10_000;

const num = (v: string | null | undefined): number => (v ? Number(v) || 0 : 0);
const time = (v: string | null | undefined): number | null => (v ? Number(v) || null : null);

function parseJson(text: string | null | undefined): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** Pipelines return [error, value] pairs; a failed read makes the whole poll fail (and be retried). */
async function run<T>(pipe: ReturnType<Redis['pipeline']>): Promise<T[]> {
  const replies = (await pipe.exec()) ?? [];
  return replies.map(([err, v]) => {
    if (err) throw err;
    return v as T;
  });
}

export class SnapshotReader {
  private readyNames = new Set<string>();
  private readyScannedAt = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** SCAN visits one node only on a Redis Cluster: there, ready queues come from worker names alone. */
    private readonly canScan: boolean,
  ) {}

  async read(): Promise<Snapshot> {
    const { redis, keys } = this;
    const [workerIds, distributorIds, assignedIds] = await Promise.all([
      redis.smembers(keys.workers),
      redis.smembers(keys.distributors),
      redis.smembers(keys.assigned),
    ]);

    const p1 = redis.pipeline();
    for (const id of workerIds) p1.hmget(keys.worker(id), 'host', 'port', 'tasks', 'concurrency', 'running', 'updated_at');
    for (const id of distributorIds) p1.hmget(keys.distributor(id), 'host', 'port', 'updated_at');
    const taskOwners = [...new Set([...workerIds, ...assignedIds])];
    for (const id of taskOwners) p1.smembers(keys.workerTasks(id));
    p1.llen(keys.newTask);
    p1.zcard(keys.delayed);
    p1.scard(keys.stopped);
    p1.llen(keys.dead);
    p1.lrange(keys.dead, 0, MAX_DEAD - 1);
    p1.xrevrange(keys.completed, '+', '-', 'COUNT', COMPLETED_SCAN);
    const r1 = await run<unknown>(p1);
    let i = 0;
    const workers: WorkerRow[] = workerIds.map((id) => {
      const [host, port, tasks, concurrency, running, updated] = r1[i++] as Array<string | null>;
      const names = parseJson(tasks);
      return {
        id,
        host: host ?? '',
        port: num(port),
        tasks: Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [],
        concurrency: num(concurrency),
        running: num(running),
        updatedAt: time(updated),
      };
    });
    const distributors: DistributorRow[] = distributorIds.map((id) => {
      const [host, port, updated] = r1[i++] as Array<string | null>;
      return { id, host: host ?? '', port: num(port), updatedAt: time(updated) };
    });
    const taskIds: string[] = [];
    // One push per id: spreading a set of 150,000 ids as arguments overflows the stack.
    for (let k = 0; k < taskOwners.length; k++) for (const id of r1[i++] as string[]) taskIds.push(id);
    const intake = r1[i++] as number;
    const delayed = r1[i++] as number;
    const stopped = r1[i++] as number;
    const deadTotal = r1[i++] as number;
    const deadRaw = r1[i++] as string[];
    const completed = r1[i++] as Array<[string, string[]]>;

    // Recent FAILED / CANCELLED ids, newest first, from the stream of terminal transitions.
    const failedIds: string[] = [];
    for (const [, fields] of completed) {
      const f: Record<string, string> = {};
      for (let k = 0; k + 1 < fields.length; k += 2) f[fields[k]!] = fields[k + 1]!;
      if ((f.state === 'FAILED' || f.state === 'CANCELLED') && f.id && !failedIds.includes(f.id)) failedIds.push(f.id);
      if (failedIds.length >= MAX_FAILURES) break;
    }

    const allIds = [...new Set(taskIds)];
    const ids = allIds.slice(0, MAX_ASSIGNED);
    const names = new Set<string>(workers.flatMap((w) => w.tasks));
    for (const n of await this.scanReadyNames()) names.add(n);
    const readyNames = [...names].sort();

    const p2 = redis.pipeline();
    for (const id of ids) p2.hmget(keys.task(id), 'name', 'state', 'worker', 'attempts', 'started_at');
    for (const id of failedIds) p2.hmget(keys.task(id), 'name', 'state', 'error', 'attempts', 'ended_at');
    for (const n of readyNames) p2.zcard(keys.ready(n));
    const r2 = await run<unknown>(p2);
    let j = 0;
    const assigned: AssignedRow[] = [];
    for (const id of ids) {
      const [name, state, worker, attempts, started] = r2[j++] as Array<string | null>;
      if (!name || !state || isTerminal(state)) continue;
      assigned.push({ id, name, state, worker: worker ?? '', attempts: num(attempts), startedAt: time(started) });
    }
    assigned.sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0));
    const failures: FailureRow[] = [];
    for (const id of failedIds) {
      const [name, state, error, attempts, ended] = r2[j++] as Array<string | null>;
      // A record retried since (QUEUED again) or removed by retention is no longer a failure to show.
      if (!name || (state !== 'FAILED' && state !== 'CANCELLED')) continue;
      failures.push({ id, name, state, error: error ?? '', attempts: num(attempts), endedAt: time(ended) });
    }
    const ready = readyNames.map((name) => ({ name, depth: r2[j++] as number }));

    const recent: DeadRow[] = deadRaw.map((text) => {
      const d = parseJson(text);
      const o = typeof d === 'object' && d !== null ? (d as Record<string, unknown>) : {};
      const raw = typeof o.raw === 'string' ? o.raw : text;
      return {
        reason: typeof o.reason === 'string' ? o.reason : '',
        at: typeof o.at === 'number' ? o.at : null,
        distributor: typeof o.distributor === 'string' ? o.distributor : '',
        raw: raw.length > DEAD_RAW_CHARS ? `${raw.slice(0, DEAD_RAW_CHARS)}…` : raw,
      };
    });

    return {
      at: Date.now(),
      prefix: keys.prefix,
      workers: workers.sort((a, b) => a.id.localeCompare(b.id)),
      distributors: distributors.sort((a, b) => a.id.localeCompare(b.id)),
      queues: { intake, delayed, stopped, ready },
      assigned,
      assignedComplete: allIds.length <= MAX_ASSIGNED,
      failures,
      dead: { total: deadTotal, recent },
    };
  }

  /** Names of ready queues that exist, cached for READY_SCAN_EVERY_MS. */
  private async scanReadyNames(): Promise<Set<string>> {
    if (!this.canScan || Date.now() - this.readyScannedAt < READY_SCAN_EVERY_MS) return this.readyNames;
    const found = new Set<string>();
    // MATCH is a glob: a prefix's own glob characters must match themselves.
    const pattern = `${this.keys.ready('').replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
    let cursor = '0';
    do {
      const [next, found1] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const k of found1) found.add(k.slice(this.keys.ready('').length));
    } while (cursor !== '0');
    this.readyNames = found;
    this.readyScannedAt = Date.now();
    return found;
  }
}
