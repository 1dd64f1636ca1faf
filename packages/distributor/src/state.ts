/**
 * What one distributor knows, shared by its parts (intake, dispatch, worker messages, requeue,
 * watch loops): the workers it hears, the attempts it assigned, the workers it holds as down, and
 * whether Redis is reachable.
 */
import type { DistributorConfig } from '@taskmesh/common';
import type { Fence, Keys, Logger, Metrics, Redis, RedisGate, Scripts } from '@taskmesh/common/internal';
import type { WorkerLink } from './worker-link';

/** An attempt this distributor assigned. */
export interface OwnTask extends Fence {
  name: string;
  worker: string;
  cleanEnd: boolean;
  /** When its assign frame was sent (ms). */
  sentAt: number;
}

/** Most task names kept for the per-name queue gauges, so a flood of odd names cannot grow it without bound. */
const MAX_KNOWN_NAMES = 1000;

export class DistributorState {
  readonly workers = new Map<string, WorkerLink>();
  readonly own = new Map<string, OwnTask>();
  /** How many own attempts each worker runs, so the own loop knows its workers without a scan. */
  private readonly ownPerWorker = new Map<string, number>();
  /** Worker id -> time until which it is held as down. */
  private readonly flagged = new Map<string, number>();
  stopping = false;
  /** Task names seen queued here, so a queue whose workers are all gone still shows its depth. */
  private readonly names = new Set<string>();
  /** When Redis last came back: supervision waits a little so workers can write heartbeats first. */
  redisSince = 0;

  constructor(
    readonly config: DistributorConfig,
    readonly keys: Keys,
    readonly scripts: Scripts,
    readonly redis: Redis,
    readonly log: Logger,
    readonly gate: RedisGate,
    readonly metrics: Metrics,
  ) {}

  get id(): string {
    return this.config.id;
  }

  /** A worker this distributor hears is alive by definition, even if it lost its own Redis link. */
  hears(workerId: string): boolean {
    return this.workers.has(workerId);
  }

  flag(workerId: string, untilMs: number): void {
    this.flagged.set(workerId, untilMs);
  }

  /** Whether a worker is held as down now. Looking clears nothing: expireFlags does. */
  isFlagged(workerId: string): boolean {
    return (this.flagged.get(workerId) ?? 0) > Date.now();
  }

  /** Clears flags whose hold ran out, so the worker can take work again; true if one did. */
  expireFlags(): boolean {
    let cleared = false;
    for (const id of [...this.flagged.keys()]) {
      if (this.isFlagged(id)) continue;
      this.flagged.delete(id);
      cleared = true;
    }
    return cleared;
  }

  /** Remembers a task name for the per-name queue gauges (a Set add: nothing per task on Redis). */
  noteName(name: string): void {
    if (this.names.size < MAX_KNOWN_NAMES) this.names.add(name);
  }

  /** Every task name this distributor knows of: seen queued, offered by a worker it hears, or running. */
  knownNames(): Set<string> {
    const out = new Set(this.names);
    for (const w of this.workers.values()) for (const n of w.tasks) out.add(n);
    for (const t of this.own.values()) out.add(t.name);
    return out;
  }

  /** Tracks an attempt this distributor assigned. */
  track(id: string, t: OwnTask): void {
    const prev = this.own.get(id);
    if (prev) this.untrack(prev);
    this.own.set(id, t);
    this.ownPerWorker.set(t.worker, (this.ownPerWorker.get(t.worker) ?? 0) + 1);
  }

  private untrack(t: OwnTask): void {
    const n = (this.ownPerWorker.get(t.worker) ?? 1) - 1;
    if (n > 0) this.ownPerWorker.set(t.worker, n);
    else this.ownPerWorker.delete(t.worker);
  }

  /** The workers this distributor's own attempts run on. */
  ownWorkers(): ReadonlySet<string> {
    return new Set(this.ownPerWorker.keys());
  }

  /** Stops tracking an own attempt and frees its slot in this distributor's count of its worker. */
  forget(id: string): void {
    const mine = this.own.get(id);
    if (!mine) return;
    this.own.delete(id);
    this.untrack(mine);
    this.workers.get(mine.worker)?.settled(id);
  }

  /** Forgets every own attempt on a worker (its connection is gone). */
  forgetWorker(workerId: string): void {
    if (!this.ownPerWorker.has(workerId)) return;
    for (const [id, t] of this.own) if (t.worker === workerId) this.own.delete(id);
    this.ownPerWorker.delete(workerId);
  }

  /** Supervision waits one interval after Redis comes back, so workers can write heartbeats first. */
  canSupervise(): boolean {
    return this.gate.up && !this.stopping && Date.now() - this.redisSince >= this.config.health.interval_ms;
  }
}
