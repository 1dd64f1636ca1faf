/**
 * The watch loops, at O(workers + changes) per interval, never O(tasks): every index they read is
 * written by the script that made the change.
 * - Own loop (watch.own_interval_ms): requeues STOPPED attempts (the stopped index), deletes END
 *   records that asked for clean_end (the clean index), promotes retries whose backoff ran out,
 *   re-reads its own processing list, and checks the heartbeats of the workers it gave tasks to.
 * - All loop (watch.all_interval_ms): checks the heartbeat of every worker with tasks (the
 *   assigned index) and requeues a silent worker's attempts through that worker's task index,
 *   removes terminal records past retention, and recovers what dead distributors left behind.
 * The requeue script re-checks fence and staleness atomically, so two distributors never requeue
 * one attempt twice.
 */
import type { ChainableCommander } from 'ioredis';
import { queuePart, throwFirstError, type PipelineReplies } from '@taskmesh/common/internal';
import type { DistributorState } from './state';
import type { Intake } from './intake';
import type { Requeuer } from './requeue';

/** What one pass found to act on. */
export interface Due {
  stopped: string[];
  clean: string[];
  /** Retries whose backoff ran out. */
  delayed: string[];
  /** Envelopes in this distributor's processing list. */
  held: number;
}

/** Ids taken from an index per pass; the rest wait for the next pass. */
const INDEX_BATCH = 1000;
/** Records removed per retention script call, and calls per all-tasks pass. */
const EXPIRE_BATCH = 500;
const EXPIRE_CALLS = 20;
/** Completion notifications are kept at most this long (7 days), whatever the retention. */
const COMPLETIONS_MAX_MS = 7 * 24 * 3600 * 1000;

export class TaskWatch {
  /** When the pass in progress began (0: none). */
  private ownSince = 0;
  private allSince = 0;

  constructor(
    private readonly s: DistributorState,
    private readonly intake: Intake,
    private readonly requeuer: Requeuer,
  ) {}

  /**
   * Whether a pass that began at `since` still counts as running. A pass whose Redis reply was
   * lost in a failover must not stop the loop for good: after many command timeouts it no
   * longer holds the next one back (every step it takes is idempotent).
   */
  private busy(since: number): boolean {
    return since > 0 && Date.now() - since < 10 * this.s.config.redis.command_timeout_ms;
  }

  /**
   * One own-tasks pass. `due` is what a caller already read with `queueReads` (in the same round
   * trip as its heartbeat); without it the pass reads for itself.
   */
  async ownTasks(due?: Due): Promise<void> {
    if (this.busy(this.ownSince)) return;
    const since = (this.ownSince = Date.now());
    try {
      due ??= await this.readIndexes();
      await this.actOn(due);
      await this.intake.recover(due.held);
      await this.checkWorkers(this.s.ownWorkers());
    } finally {
      if (this.ownSince === since) this.ownSince = 0;
    }
  }

  /** Whether an own-tasks pass would run now (none is in progress). */
  ownIdle(): boolean {
    return !this.busy(this.ownSince);
  }

  async allTasks(): Promise<void> {
    if (this.busy(this.allSince)) return;
    const since = (this.allSince = Date.now());
    try {
      const { redis, keys, scripts } = this.s;
      // Everything the pass starts from in one round trip; further reads happen only for peers
      // this distributor does not hear itself, and for work found.
      const pipe = redis.pipeline();
      const sets = queuePart(pipe, (p) => p.smembers(keys.assigned).smembers(keys.intakes).smembers(keys.workers).smembers(keys.distributors));
      const ended = this.queueRetention(pipe);
      const read = this.queueReads(pipe);
      // Each step takes its own replies and fails on its own error where it used to read them.
      const replies = (await pipe.exec()) ?? [];
      const [assigned, intakes, workers, distributors] = sets(replies) as [string[], string[], string[], string[]];
      await this.checkWorkers(new Set(assigned));
      await scripts.pruneAssigned(assigned.filter((w) => !this.s.hears(w)));
      // Also here: a retry due is never left waiting on one loop.
      await this.actOn(read(replies));
      await this.expireTerminal(ended(replies));
      await this.recoverDeadPeers(intakes, workers, distributors);
    } finally {
      if (this.allSince === since) this.allSince = 0;
    }
  }

  /**
   * Reads every index a pass acts on in one round trip. An idle Redis pays for each wakeup (about
   * 80 µs of its CPU here, whatever the commands: docs/performance.md, W4), not for each command,
   * so a quiet mesh's cost is its round trips per interval.
   */
  private async readIndexes(): Promise<Due> {
    const pipe = this.s.redis.pipeline();
    const read = this.queueReads(pipe);
    return read((await pipe.exec()) ?? []);
  }

  /**
   * Queues the reads of a pass on `pipe`, after whatever it already holds, and returns how to
   * take what they found out of the pipeline's replies.
   */
  queueReads(pipe: ChainableCommander): (replies: PipelineReplies) => Due {
    const { keys } = this.s;
    const part = queuePart(pipe, (p) =>
      p
        .srandmember(keys.stopped, INDEX_BATCH)
        .srandmember(keys.clean, INDEX_BATCH)
        .zrangebyscore(keys.delayed, '-inf', Date.now(), 'LIMIT', 0, 200)
        .llen(keys.intake(this.s.id)),
    );
    return (replies) => {
      const [stopped, clean, delayed, held] = part(replies) as [string[], string[], string[], number];
      return { stopped, clean, delayed, held };
    };
  }

  /** Requeues STOPPED attempts, deletes clean_end records, and promotes retries whose backoff ran out. */
  private async actOn(due: Due): Promise<void> {
    const { redis, keys, scripts } = this.s;
    await this.requeuer.requeueIds(due.stopped, 'stopped');
    await Promise.all(due.clean.map((id) => scripts.cleanEnd(id)));
    if (due.delayed.length === 0) return;
    const pipe = redis.pipeline();
    for (const id of due.delayed) pipe.hget(keys.task(id), 'name');
    const rows = (await pipe.exec()) ?? [];
    // Concurrent calls share the connection's round trips instead of waiting one each.
    await Promise.all(
      due.delayed.map((id, i) => {
        const [err, name] = rows[i] ?? [new Error('no reply')];
        // An error is no answer (a connection dropped in a failover answers every command of the
        // pipeline with one), not a record that is gone: the entry waits for the next pass.
        // Dropping it would leave its task QUEUED in no queue, for good.
        if (err) return undefined;
        return typeof name === 'string' ? scripts.promote(id, name) : redis.zrem(keys.delayed, id);
      }),
    );
  }

  /**
   * Requeues the attempts of workers that are silent: not heard by this distributor and with a
   * heartbeat missing or older than watch.stale_ms (the script applies the whole stale rule).
   */
  private async checkWorkers(workerIds: ReadonlySet<string>): Promise<void> {
    const { redis, keys } = this.s;
    const candidates = [...workerIds].filter((w) => !this.s.hears(w));
    if (candidates.length === 0) return;
    const pipe = redis.pipeline();
    for (const w of candidates) pipe.hmget(keys.worker(w), 'updated_at', 'lease_ms');
    const rows = (await pipe.exec()) ?? [];
    const now = Date.now();
    const staleBefore = now - this.s.config.watch.stale_ms;
    for (let i = 0; i < candidates.length; i++) {
      const [beat, lease] = (rows[i]?.[1] ?? []) as (string | null)[];
      // A RedisStore claim's worker hash says how long its lease is: that is its stale rule.
      const before = lease ? now - Number(lease) : staleBefore;
      if (beat !== null && beat !== undefined && Number(beat) >= before) continue;
      if (this.s.stopping) return;
      await this.requeuer.requeueWorkerTasks(candidates[i]!, 'stale', staleBefore);
    }
  }

  /**
   * Queues retention's first reads on `pipe`: the completions stream's trim (what onComplete
   * consumers read keeps as long as the records, and at most COMPLETIONS_MAX_MS when records are
   * kept forever; its ids are Redis's own clock) and the first ids past retention.
   */
  private queueRetention(pipe: ChainableCommander): (replies: PipelineReplies) => string[] {
    const { keys } = this.s;
    const keep = this.s.config.retention.terminal_ms;
    const part = queuePart(pipe, (p) => {
      p.xtrim(keys.completed, 'MINID', '~', String(Date.now() - (keep === 0 ? COMPLETIONS_MAX_MS : Math.min(keep, COMPLETIONS_MAX_MS))));
      if (keep !== 0) p.zrangebyscore(keys.ended, '-inf', Date.now() - keep, 'LIMIT', 0, EXPIRE_BATCH);
    });
    return (replies) => (part(replies)[1] as string[] | undefined) ?? [];
  }

  /** Retention: terminal records leave `retention.terminal_ms` after they ended (0 keeps them). */
  private async expireTerminal(first: string[]): Promise<void> {
    const keep = this.s.config.retention.terminal_ms;
    const { redis, keys, scripts, log } = this.s;
    const cutoff = Date.now() - keep;
    let removed = 0;
    let ids = first;
    for (let i = 0; i < EXPIRE_CALLS && ids.length > 0 && !this.s.stopping; i++) {
      removed += await scripts.expire(ids, cutoff);
      if (ids.length < EXPIRE_BATCH) break;
      ids = await redis.zrangebyscore(keys.ended, '-inf', cutoff, 'LIMIT', 0, EXPIRE_BATCH);
    }
    if (removed > 0) log.info('removed terminal records past retention', { count: removed });
  }

  /**
   * Hands back the intake lists of distributors that are gone, and prunes dead registry entries.
   * Itself and the workers it hears are alive by definition: only the others are looked up.
   */
  private async recoverDeadPeers(intakes: string[], workers: string[], distributors: string[]): Promise<void> {
    const { redis, keys } = this.s;
    const notMe = (ids: string[]) => ids.filter((id) => id !== this.s.id);
    const lists = [
      { ids: notMe(intakes), key: (id: string) => keys.distributor(id) },
      { ids: workers.filter((id) => !this.s.hears(id)), key: (id: string) => keys.worker(id) },
      { ids: notMe(distributors), key: (id: string) => keys.distributor(id) },
    ];
    if (lists.every((l) => l.ids.length === 0)) return;
    const pipe = redis.pipeline();
    for (const l of lists) for (const id of l.ids) pipe.exists(l.key(id));
    const rows = throwFirstError(await pipe.exec());
    let i = 0;
    const [goneIntakes, goneWorkers, goneDistributors] = lists.map((l) => l.ids.filter(() => rows[i++]![1] === 0));
    for (const id of goneIntakes!) {
      await this.intake.handBack(id);
      await redis.srem(keys.intakes, id);
    }
    if (goneWorkers!.length > 0) await redis.srem(keys.workers, ...goneWorkers!);
    if (goneDistributors!.length > 0) await redis.srem(keys.distributors, ...goneDistributors!);
  }
}
