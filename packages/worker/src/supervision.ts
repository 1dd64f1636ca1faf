/**
 * The worker's side of supervision, O(1) per interval whatever it runs: one heartbeat script that
 * keeps all its tasks alive and hands it its inbox (takeovers and cancels written by the scripts
 * that made them), plus two checks that only run on a change:
 * - an assign frame that never arrived: its task index holds more ids than it runs, so it reads
 *   the index and gives back what it has not heard of for two intervals;
 * - a reconnect to Redis (or a hash that had to be written again): it checks every run's fence.
 */
import type { Message } from '@taskmesh/common';
import type { Keys, Logger, Presence, Redis, Scripts } from '@taskmesh/common/internal';
import type { AbortCode, Run, RunTable } from './run';

export interface SupervisionHost {
  readonly id: string;
  readonly runs: RunTable;
  readonly scripts: Scripts;
  readonly redis: Redis;
  readonly keys: Keys;
  readonly presence: Presence;
  readonly log: Logger;
  readonly intervalMs: number;
  /** Writes the worker's hash again (it expired or Redis lost it). */
  register(): Promise<void>;
  abort(run: Run, code: AbortCode, message: string): void;
  /** A Redis call failed. */
  redisLost(reason: string): void;
  /** A Redis call succeeded. */
  redisOk(): void;
  /** Tells any connected distributor. */
  tellAny(msg: Message): void;
}

export class WorkerSupervision {
  private beating = false;
  /** Ids recorded against this worker that it does not run, and since when (local clock). */
  private unknownSince = new Map<string, number>();

  constructor(private readonly h: SupervisionHost) {}

  async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      await this.beatOnce();
    } catch (err) {
      this.h.redisLost((err as Error).message);
    } finally {
      this.beating = false;
    }
  }

  private async beatOnce(): Promise<void> {
    const { h } = this;
    const r = await h.scripts.heartbeat(h.id, h.presence.ttlMs, h.runs.running);
    h.redisOk();
    if (r.kind === 'unregistered') {
      // Its hash was gone (expired, or Redis lost it): register again, then check every fence.
      await h.register();
      await this.verify();
      return;
    }
    for (const e of r.inbox) {
      const run = h.runs.get(e.id);
      if (!run || run.fence.epoch !== e.epoch || run.phase !== 'running') continue;
      if (e.kind === 'cancel') h.abort(run, 'TASK_CANCELLED', `task ${e.id} was cancelled by a client`);
      else h.abort(run, 'TASK_TAKEN_OVER', `task ${e.id} was taken over by a newer attempt (epoch moved on from ${e.epoch})`);
    }
    if (r.indexed > h.runs.size) await this.giveBackUnknown(await h.redis.smembers(h.keys.workerTasks(h.id)));
    else this.unknownSince.clear();
  }

  /** Checks every run's fence (after a reconnect): aborts those taken over or cancelled meanwhile. */
  async verify(): Promise<void> {
    const { h } = this;
    const runs = [...h.runs.active()];
    const r = await h.scripts.verify(runs.map((x) => ({ id: x.id, ...x.fence })));
    for (const i of r.lost) {
      const run = runs[i];
      if (run) h.abort(run, 'TASK_TAKEN_OVER', `task ${run.id} was taken over by a newer attempt (epoch moved on from ${run.fence.epoch})`);
    }
    for (const i of r.cancel) {
      const run = runs[i];
      if (run) h.abort(run, 'TASK_CANCELLED', `task ${run.id} was cancelled by a client`);
    }
  }

  /**
   * Tasks recorded against this worker that it does not run: their assign frame never arrived
   * (a distributor died between assigning and sending, or the socket dropped). One that has been
   * unknown here for two intervals (by this worker's own clock) is given back as STOPPED, so a
   * distributor requeues it; a frame still in flight arrives well within that time.
   */
  private async giveBackUnknown(ids: string[]): Promise<void> {
    const { h } = this;
    const now = Date.now();
    const seen = new Map<string, number>();
    for (const id of ids) if (!h.runs.has(id)) seen.set(id, this.unknownSince.get(id) ?? now);
    this.unknownSince = seen;
    for (const [id, since] of seen) {
      if (now - since < 2 * h.intervalMs || h.runs.has(id)) continue;
      const fence = await h.scripts.giveBack(id, h.id);
      seen.delete(id);
      if (fence) {
        h.log.warn('gave back a task assigned to this worker that never reached it', { task: id, epoch: fence.epoch });
        h.tellAny({ type: 'done', id, epoch: fence.epoch, assignment: fence.assignment, state: 'STOPPED', running: h.runs.running });
      }
    }
  }
}
