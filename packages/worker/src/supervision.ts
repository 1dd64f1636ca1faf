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

/** An attempt this worker must not start: taken over or cancelled before its frame arrived. */
interface Early {
  kind: 'lost' | 'cancel';
  epoch: number;
  at: number;
}

export class WorkerSupervision {
  /** When a heartbeat last reached Redis (0: none yet), for the heartbeat-age gauge. */
  lastBeatAt = 0;
  private beating = false;
  /** Ids recorded against this worker that it does not run, and since when (local clock). */
  private unknownSince = new Map<string, number>();
  /** Beats in a row at which the task index held more ids than the runs it should hold. */
  private excessBeats = 0;
  /**
   * Inbox entries and give-backs for attempts whose assign frame has not arrived (yet): kept a
   * few intervals, so a frame that arrives late is refused instead of running a dead attempt.
   */
  private readonly early = new Map<string, Early>();

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
    this.lastBeatAt = Date.now();
    h.redisOk();
    if (r.kind === 'unregistered') {
      // Its hash was gone (expired, or Redis lost it): register again, then check every fence.
      await h.register();
      await this.verify();
      return;
    }
    const now = Date.now();
    for (const [id, e] of this.early) if (now - e.at > 3 * h.intervalMs) this.early.delete(id);
    for (const e of r.inbox) {
      const run = h.runs.get(e.id);
      if (!run || run.fence.epoch < e.epoch) {
        // Its frame may still be on the way: remember, so it is refused when it comes.
        this.early.set(e.id, { kind: e.kind, epoch: e.epoch, at: now });
        continue;
      }
      if (run.fence.epoch !== e.epoch || run.phase !== 'running') continue;
      if (e.kind === 'cancel') h.abort(run, 'TASK_CANCELLED', `task ${e.id} was cancelled by a client`);
      else h.abort(run, 'TASK_TAKEN_OVER', `task ${e.id} was taken over by a newer attempt (epoch moved on from ${e.epoch})`);
    }
    // Frames in flight make the index bigger for a beat; an orphan keeps it bigger.
    if (r.indexed > h.runs.indexed) this.excessBeats++;
    else {
      this.excessBeats = 0;
      this.unknownSince.clear();
    }
    if (this.excessBeats >= 2) await this.giveBackUnknown(await h.redis.smembers(h.keys.workerTasks(h.id)));
  }

  /**
   * Whether an attempt arriving now was taken over ('lost') or cancelled before its frame came;
   * undefined when it may start.
   */
  takeEarly(id: string, epoch: number): 'lost' | 'cancel' | undefined {
    const e = this.early.get(id);
    if (!e) return undefined;
    if (e.kind === 'lost' ? e.epoch >= epoch : e.epoch === epoch) {
      this.early.delete(id);
      return e.kind;
    }
    return undefined;
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
    // A run taken over is not the attempt the index names, so its id counts as unknown too.
    const unknown = (id: string): boolean => h.runs.get(id)?.detached ?? true;
    for (const id of ids) if (unknown(id)) seen.set(id, this.unknownSince.get(id) ?? now);
    this.unknownSince = seen;
    for (const [id, since] of seen) {
      if (now - since < 2 * h.intervalMs || !unknown(id)) continue;
      const fence = await h.scripts.giveBack(id, h.id);
      seen.delete(id);
      if (fence) {
        // Should its frame still come, it is refused: the attempt is given back.
        this.early.set(id, { kind: 'lost', epoch: fence.epoch, at: Date.now() });
        h.log.warn('gave back a task assigned to this worker that never reached it', { task: id, epoch: fence.epoch });
        h.tellAny({ type: 'done', id, epoch: fence.epoch, assignment: fence.assignment, state: 'STOPPED', running: h.runs.running });
      }
    }
  }
}
