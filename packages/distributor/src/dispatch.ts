/**
 * Dispatch: hands runnable tasks to connected workers, the least loaded worker of a task's name
 * first, in the order queue.kind says: the ready queue's head (priority, fifo: the score decides),
 * a uniform sample of it (random), or its head with names drawn by weight (weighted). One assign script call claims a batch of one name for one worker, and the assign frames
 * leave in one batch frame; the task's stored config is spliced into its frame as the JSON text it
 * already is, never parsed and encoded again.
 */
import { randomUUID } from 'node:crypto';
import type { Assigned, Handover } from '@taskmesh/common/internal';
import type { DistributorState } from './state';
import type { Requeuer } from './requeue';
import type { WorkerLink } from './worker-link';

/** Tasks claimed per assign script call. */
const ASSIGN_CHUNK = 64;
/** Rounds one dispatch run makes at most before yielding to a new run. */
const MAX_ROUNDS = 1000;

export class Dispatcher {
  private queued = false;
  private running: Promise<void> | undefined;
  /**
   * Whether ready queues may hold tasks: false once a run read the queues of every worker's
   * names empty, true again on anything that may have queued a task (queuedWork). While it is
   * false a freed slot and the periodic recheck cost no read (an idle Redis pays per round trip),
   * and intake may hand tasks over: a new task never takes a slot ahead of older ones waiting in
   * a queue, of its name or of another the same worker serves.
   */
  private backlog = true;

  constructor(
    private readonly s: DistributorState,
    private readonly requeuer: Requeuer,
  ) {}

  /**
   * Something may have made work runnable (a notification, a freed slot, a worker that came):
   * coalesces requests, at most one run at a time and one more queued behind it.
   */
  schedule(): void {
    this.run();
  }

  /**
   * Some task may be runnable that no run has read yet: a `ready` notification (ours included),
   * a resubscribe, a worker that came or got its Redis link back, an expired down flag.
   */
  queuedWork(): void {
    this.backlog = true;
    this.schedule();
  }

  /**
   * A slot was freed (a `done`, a health check's lower running count). Worth a run only while
   * queues may hold tasks: with no backlog, an idle mesh's every task would cost a read of every
   * ready queue for nothing.
   */
  freed(): void {
    if (this.backlog) this.schedule();
  }

  /**
   * The periodic safety net of the own-tasks loop: runs only while queues may hold tasks (a run
   * with no eligible worker reads nothing, so a full mesh pays nothing for it either).
   */
  recheck(): void {
    if (this.backlog) this.run();
  }

  private run(): void {
    if (this.queued || this.s.stopping) return;
    this.queued = true;
    const run = async () => {
      // A run whose Redis reply was lost in a failover must not hold dispatch back for good.
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((r) => (timer = setTimeout(r, 10 * this.s.config.redis.command_timeout_ms)));
      await Promise.race([this.running?.catch(() => undefined), limit]);
      clearTimeout(timer);
      this.queued = false;
      await this.dispatch();
    };
    this.running = run().catch((err: Error) => this.s.log.warn('dispatch failed', { reason: err.message }));
  }

  /** Waits for the dispatch in progress (at shutdown). */
  async settle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  private async dispatch(): Promise<void> {
    const s = this.s;
    for (let round = 0; round < MAX_ROUNDS && !s.stopping && s.gate.up; round++) {
      const registered = [...s.workers.values()].filter((w) => w.registered);
      const eligible = registered.filter((w) => w.canTakeWork && !s.isFlagged(w.id));
      if (eligible.length === 0) return;
      const byName = new Map<string, WorkerLink[]>();
      for (const w of eligible) for (const n of w.tasks) (byName.get(n) ?? byName.set(n, []).get(n)!).push(w);
      const kind = s.config.queue.kind;
      const names = kind === 'weighted' ? weightedOrder([...byName.keys()], s.config.queue.weights) : [...byName.keys()];
      const pipe = s.redis.pipeline();
      for (const n of names) {
        const capacity = byName.get(n)!.reduce((sum, w) => sum + w.free, 0);
        if (kind === 'random') pipe.zrandmember(s.keys.ready(n), capacity);
        else pipe.zrange(s.keys.ready(n), '0', String(capacity - 1));
      }
      const rows = (await pipe.exec()) ?? [];
      if (rows.every(([err, ids]) => !err && (ids as string[]).length === 0)) {
        // No backlog only when the queues of every worker's names were read: a full, flagged or
        // draining worker's names were not, and may hold tasks.
        if (eligible.length === registered.length && this.backlog) {
          this.backlog = false;
          s.log.debug('ready queues empty: intake may start new tasks at once');
        }
        return;
      }
      this.backlog = true;
      const jobs: Promise<number>[] = [];
      names.forEach((n, i) => {
        const ids = (rows[i]?.[1] ?? []) as string[];
        const ws = byName.get(n)!;
        const batches = new Map<WorkerLink, string[]>();
        for (const id of ids) {
          const w = leastLoaded(ws);
          if (!w) break;
          w.reserve(id);
          (batches.get(w) ?? batches.set(w, []).get(w)!).push(id);
        }
        // Smaller claims overlap: the first frames leave while Redis still runs the next claim.
        for (const [w, batch] of batches) for (let j = 0; j < batch.length; j += ASSIGN_CHUNK) jobs.push(this.assign(w, n, batch.slice(j, j + ASSIGN_CHUNK)));
      });
      if (jobs.length === 0) return;
      const assigned = (await Promise.all(jobs)).reduce((a, b) => a + b, 0);
      if (assigned === 0) return;
    }
  }

  /**
   * Holds a slot for every task of an intake batch, each on the least loaded worker of its name,
   * so the intake script can start them at once (intake.lua, hand-over). All or none: a batch
   * with more tasks than free slots goes through the ready queues, where the queue kind decides
   * who runs first. Returns the slots in the tasks' order, or undefined.
   */
  holdSlots(tasks: ReadonlyArray<{ id: string; name: string }>): Handover[] | undefined {
    const s = this.s;
    if (this.backlog || s.stopping || !s.gate.up || tasks.length === 0) return undefined;
    // A slot is held per task id: an id twice in the batch (a producer's retried push), or one a
    // worker already holds, would share a slot and free it twice. Such a batch takes the queues.
    const ids = new Set(tasks.map((t) => t.id));
    const links = [...s.workers.values()];
    if (ids.size < tasks.length || links.some((w) => tasks.some((t) => w.holds(t.id)))) return undefined;
    const held: Array<{ w: WorkerLink; id: string }> = [];
    const out: Handover[] = [];
    for (const t of tasks) {
      const w = leastLoaded(links.filter((c) => c.canTakeWork && c.tasks.includes(t.name) && !s.isFlagged(c.id)));
      if (!w) {
        for (const h of held) h.w.settled(h.id);
        return undefined;
      }
      w.reserve(t.id);
      held.push({ w, id: t.id });
      out.push({ worker: w.id, assignment: randomUUID() });
    }
    return out;
  }

  /** Frees a slot holdSlots held for a task the intake script queued or refused instead. */
  release(workerId: string, id: string): void {
    this.s.workers.get(workerId)?.settled(id);
  }

  /** Claims a batch of one name for one worker and sends the assign frames; returns how many went. */
  private async assign(w: WorkerLink, name: string, ids: string[]): Promise<number> {
    const s = this.s;
    const tasks = ids.map((id) => ({ id, assignment: randomUUID() }));
    let results;
    try {
      results = await s.scripts.assignMany(name, w.id, s.id, tasks);
    } catch (err) {
      for (const id of ids) w.settled(id);
      throw err;
    }
    let sent = 0;
    for (let i = 0; i < tasks.length; i++) {
      const { id, assignment } = tasks[i]!;
      const r = results[i]!;
      if (r.kind !== 'assigned') w.settled(id);
      else if (await this.deliver(w.id, id, name, assignment, r, w)) sent++;
    }
    return sent;
  }

  /**
   * Sends the assign frame of an attempt Redis recorded as started (by the assign script, or by
   * intake's hand-over) to its worker's connection now; true if it left. One whose worker is
   * gone now is requeued at once.
   */
  async deliver(workerId: string, id: string, name: string, assignment: string, r: Assigned, w = this.s.workers.get(workerId)): Promise<boolean> {
    const s = this.s;
    // The worker reconnected since its slot was held (the old link's holds were dropped with it):
    // the new link counts the attempt until its `done`.
    if (w && !w.holds(id)) w.reserve(id);
    s.track(id, { name, worker: workerId, epoch: r.epoch, assignment, cleanEnd: r.cleanEnd, sentAt: Date.now() });
    if (r.queuedAt !== null) s.metrics.queueWaitSeconds.observe({ name }, Math.max(0, Date.now() - r.queuedAt) / 1000);
    const frame = `{"type":"assign","task":{"id":${JSON.stringify(id)},"name":${JSON.stringify(name)},"config":${configJson(r.config)},"epoch":${r.epoch},"assignment":"${assignment}","attempt":${r.attempt},"state_optional":${r.stateOptional}}}`;
    if (w?.channel.sendEncoded(frame)) {
      s.log.debug('task assigned', { task: id, attempt: r.attempt, epoch: r.epoch, name, worker: workerId });
      return true;
    }
    w?.settled(id);
    await this.requeuer.requeue(id, workerId, { epoch: r.epoch, assignment }, 'rejected', name);
    return false;
  }
}

/** The least loaded worker with a free slot; among equals, the one that waited longest. */
function leastLoaded(ws: readonly WorkerLink[]): WorkerLink | undefined {
  let w: WorkerLink | undefined;
  for (const cand of ws) {
    if (cand.free > 0 && (!w || cand.load < w.load || (cand.load === w.load && cand.lastAssigned < w.lastAssigned))) w = cand;
  }
  return w;
}

/**
 * The stored config as frame text. The intake and submit scripts store it as JSON text of an
 * object from a validated envelope, so it is spliced as is; anything else (a record written by
 * hand) is encoded as a string, so one odd record can never spoil a whole batch frame.
 */
function configJson(stored: string): string {
  if (stored.startsWith('{') && stored.endsWith('}')) return stored;
  try {
    return JSON.stringify(JSON.parse(stored));
  } catch {
    return JSON.stringify(stored);
  }
}

/**
 * Names in a random order where each comes first in proportion to its weight (default 1): the
 * first names get the contested capacity (Efraimidis-Spirakis: sort by u^(1/w)).
 */
function weightedOrder(names: readonly string[], weights: Readonly<Record<string, number>>): string[] {
  return names
    .map((n) => ({ n, k: Math.random() ** (1 / (weights[n] ?? 1)) }))
    .sort((a, b) => b.k - a.k)
    .map((x) => x.n);
}
