/**
 * Redis key names. The public ones (SPEC section 2) are what other languages rely on; the rest are
 * internal but stay under the prefix. Every key a script touches is passed in KEYS, so a prefix with
 * a hash tag (`{tm}:`) keeps them all in one Redis Cluster slot.
 */
export class Keys {
  constructor(readonly prefix: string) {}

  // Public.
  get newTask(): string {
    return `${this.prefix}new-task`;
  }
  get tasks(): string {
    return `${this.prefix}tasks`;
  }
  task(id: string): string {
    return `${this.prefix}task:${id}`;
  }
  get workers(): string {
    return `${this.prefix}workers`;
  }
  worker(id: string): string {
    return `${this.prefix}worker:${id}`;
  }
  get distributors(): string {
    return `${this.prefix}distributors`;
  }
  distributor(id: string): string {
    return `${this.prefix}distributor:${id}`;
  }
  get dead(): string {
    return `${this.prefix}dead`;
  }

  // Internal.
  /** Sorted set of QUEUED task ids runnable now, one per task name, ordered by priority then arrival. */
  ready(name: string): string {
    return `${this.prefix}ready:${name}`;
  }
  /** Counter that orders the ready queues first come, first served within a priority. */
  get seq(): string {
    return `${this.prefix}seq`;
  }
  /** Sorted set of QUEUED task ids waiting out a retry backoff, scored by due time. */
  get delayed(): string {
    return `${this.prefix}delayed`;
  }
  /** Set of the task ids currently assigned to a worker. */
  workerTasks(workerId: string): string {
    return `${this.prefix}worker-tasks:${workerId}`;
  }
  /** Ids of workers that may have tasks recorded against them (assign adds, the all-tasks loop prunes). */
  get assigned(): string {
    return `${this.prefix}assigned`;
  }
  /** A worker's inbox: takeovers and cancels written by the script that made them, read by its heartbeat. */
  inbox(workerId: string): string {
    return `${this.prefix}inbox:${workerId}`;
  }
  /** Set of STOPPED task ids: what a distributor must requeue. */
  get stopped(): string {
    return `${this.prefix}stopped`;
  }
  /** Sorted set of terminal task ids by ended_at: the retention index. */
  get ended(): string {
    return `${this.prefix}ended`;
  }
  /**
   * Stream of terminal transitions (`id`, `name`, `state`), one entry each, in the order Redis
   * recorded them: what `TaskClient.onComplete` consumer groups read. Trimmed with retention.
   */
  get completed(): string {
    return `${this.prefix}completed`;
  }
  /** Set of END task ids that asked for clean_end and whose record is not deleted yet. */
  get clean(): string {
    return `${this.prefix}clean`;
  }
  // The Store API's notification queue (RedisStore).
  /** Sorted set of a task's waiting notification targets (canonical JSON), in queue order. */
  notify(id: string): string {
    return `${this.prefix}notify:${id}`;
  }
  /** Sorted set of task ids with waiting targets. */
  get notifyPending(): string {
    return `${this.prefix}notify-pending`;
  }
  /** Counter that orders the targets. */
  get notifySeq(): string {
    return `${this.prefix}notify-seq`;
  }
  /** Hash of notification leases: id -> "token|expires". */
  get notifyLeases(): string {
    return `${this.prefix}notify-leases`;
  }
  /** Set while a distributor holds a worker as down (expires after watch.stale_ms). */
  workerDown(workerId: string): string {
    return `${this.prefix}worker-down:${workerId}`;
  }
  /** A distributor's processing list: envelopes taken from new-task and not yet recorded. */
  intake(distributorId: string): string {
    return `${this.prefix}intake:${distributorId}`;
  }
  /** Ids of distributors that own an intake list (so a dead one's list can be recovered). */
  get intakes(): string {
    return `${this.prefix}intakes`;
  }
  /** Pub/sub channel: `ready` and `cancel <id>` notifications. */
  get channel(): string {
    return `${this.prefix}events`;
  }
}
