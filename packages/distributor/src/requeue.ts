/**
 * Requeue: every path that puts an attempt back in the queue (a refusal, a STOPPED attempt, a lost
 * or stale worker) goes through the requeue script, which re-checks the fence atomically, so two
 * distributors never requeue one attempt twice.
 */
import type { Fence, RequeueCause, RequeueMode } from '@taskmesh/common/internal';
import type { DistributorState, OwnTask } from './state';

/** A task a worker refused waits this long before it is runnable again, so a refusal cannot spin. */
const REJECT_DELAY_MS = 250;

/** The metrics' name for each mode: `down` is the takeover of a lost worker's attempts. */
const CAUSE: Record<RequeueMode, RequeueCause> = { stopped: 'stopped', stale: 'stale', down: 'takeover', rejected: 'rejected' };

export class Requeuer {
  constructor(private readonly s: DistributorState) {}

  /**
   * @param seenState the record's state, read together with the fence: a stale or down requeue
   *   of an attempt seen RUNNING counts as a stall (the script re-checks the fence, so a requeue
   *   that goes through acted on that very attempt).
   */
  async requeue(id: string, workerId: string, fence: Fence, mode: RequeueMode, name?: string, staleBefore?: number, seenState?: string): Promise<void> {
    const { s } = this;
    const taskName = name ?? (await s.redis.hget(s.keys.task(id), 'name'));
    if (!taskName) {
      await s.redis.multi().srem(s.keys.workerTasks(workerId), id).srem(s.keys.stopped, id).exec();
      return;
    }
    const r = await s.scripts.requeue(id, taskName, workerId, fence, mode, {
      staleBefore,
      backoffMs: s.config.retry.backoff_ms,
      backoffMaxMs: s.config.retry.backoff_max_ms,
      rejectDelayMs: Math.min(REJECT_DELAY_MS, s.config.retry.backoff_ms),
    });
    if (r !== 'skipped') {
      const cause = CAUSE[mode];
      s.metrics.requeues.inc({ cause, result: r });
      // 'failed' on a stale/down requeue only comes from max_stalls, so it is a stall whatever was seen.
      if ((mode === 'stale' || mode === 'down') && (seenState === 'RUNNING' || r === 'failed')) s.metrics.stalls.inc({ cause });
      s.forget(id);
      const level = mode === 'rejected' || mode === 'stopped' ? 'debug' : 'info';
      s.log[r === 'failed' ? 'warn' : level](`task ${r}`, { task: id, mode, worker: workerId, epoch: fence.epoch });
    }
  }

  /** Requeues attempts by id, reading each one's fence first (one round trip for all of them). */
  async requeueIds(ids: readonly string[], mode: RequeueMode, opts: { staleBefore?: number; workerId?: string } = {}): Promise<number> {
    if (ids.length === 0) return 0;
    const { s } = this;
    const pipe = s.redis.pipeline();
    for (const id of ids) pipe.hmget(s.keys.task(id), 'epoch', 'assignment', 'name', 'worker', 'state');
    const rows = (await pipe.exec()) ?? [];
    const results = await Promise.allSettled(
      ids.map(async (id, i) => {
        const [epoch, assignment, name, worker, state] = (rows[i]?.[1] ?? []) as (string | null)[];
        await this.requeue(
          id,
          opts.workerId ?? worker ?? '',
          { epoch: Number(epoch ?? -1), assignment: assignment ?? '' },
          mode,
          name ?? undefined,
          opts.staleBefore,
          state ?? undefined,
        );
      }),
    );
    return results.filter((r) => r.status === 'rejected').length;
  }

  /**
   * A worker said goodbye: it records STOPPED for every run before it closes, so an attempt this
   * distributor sent it within the last health interval that is still RUNNING under the same
   * fence is one whose assign frame crossed the goodbye. It is requeued as refused (no stall, the
   * start not counted), not left to go stale. An older one may have run there (its STOPPED write
   * failed): the stale rule decides it, as a stall.
   */
  async requeueUnstarted(workerId: string, given: ReadonlyArray<readonly [string, OwnTask]>): Promise<void> {
    const { s } = this;
    const since = Date.now() - s.config.health.interval_ms;
    given = given.filter(([, t]) => t.sentAt >= since);
    if (given.length === 0) return;
    const pipe = s.redis.pipeline();
    for (const [id] of given) pipe.hmget(s.keys.task(id), 'state', 'epoch', 'assignment');
    const rows = (await pipe.exec()) ?? [];
    await Promise.allSettled(
      given.map(([id, t], i) => {
        const [state, epoch, assignment] = (rows[i]?.[1] ?? []) as (string | null)[];
        if (state !== 'RUNNING' || Number(epoch) !== t.epoch || assignment !== t.assignment) return undefined;
        return this.requeue(id, workerId, t, 'rejected', t.name);
      }),
    );
  }

  /** Requeues every attempt recorded against a worker (each one fence-checked). */
  async requeueWorkerTasks(workerId: string, mode: RequeueMode, staleBefore?: number): Promise<void> {
    const { s } = this;
    let ids: string[];
    try {
      ids = await s.redis.smembers(s.keys.workerTasks(workerId));
    } catch (err) {
      s.log.warn("cannot requeue a lost worker's tasks now; the watch loops will", { worker: workerId, reason: (err as Error).message });
      return;
    }
    // The ids are this worker's by its index; the script re-checks that each still is, and drops
    // those that are not from the index.
    const failed = await this.requeueIds(ids, mode, { staleBefore, workerId });
    if (failed > 0) s.log.warn("some of a lost worker's tasks could not be requeued now; the watch loops will", { worker: workerId, failed });
  }
}
