/**
 * Following one task wherever it runs (docs/protocol.md, "Watcher protocol", rule 5): read the
 * record, subscribe on the worker it names, and after the attempt ends there, the connection
 * drops or the record moves on, read the record again and resubscribe with `since` = the last
 * (attempt, seq) seen. Events are yielded at most once and in (attempt, seq) order.
 */
import { isTerminal, UnknownTaskError, type TaskEvent, type TaskRecord, type WatchSince } from '@taskmesh/common';
import { AsyncQueue, sleep } from './event-queue';
import type { LinkItem, LinkPool } from './worker-link';

/** What a follower needs from its Watcher. */
export interface FollowCore {
  pool: LinkPool;
  readRecord(id: string): Promise<TaskRecord | null>;
  readWorker(id: string): Promise<{ host: string; port: number } | null>;
  pollMs: number;
  recheckMs: number;
}

export interface FollowOptions {
  /** Resume after this (attempt, seq): nothing at or before it is yielded. */
  since?: WatchSince;
  /** Keep following after a terminal state (a retried task runs again). */
  pastTerminal?: boolean;
  signal: AbortSignal;
}

type StreamResult = 'final' | 'ended' | 'moved' | 'not-here' | 'failed' | 'gone' | 'stopped';

/** Whether an event is the last one of its attempt (the worker sends nothing after it). */
export function isFinal(e: TaskEvent): boolean {
  return e.type === 'state' && e.state !== 'RUNNING';
}

export class TaskFollower {
  private last: WatchSince | null;
  /** The terminal state event already yielded, by attempt. */
  private terminalAttempt = -1;
  /**
   * Whether this follower has subscribed on a worker: it was watching before the end, so a
   * terminal record it finds later (its link dropped before any event came) means the worker may
   * still hold the attempt's events, which beat one state event made from the record.
   */
  private followedLive = false;

  constructor(
    private readonly core: FollowCore,
    readonly id: string,
    private readonly emit: (e: TaskEvent) => void,
    private readonly opts: FollowOptions,
  ) {
    this.last = opts.since ?? null;
  }

  /** Resolves when the task is terminal (or gone, or stopped); rejects with UnknownTaskError. */
  async run(): Promise<void> {
    const { signal } = this.opts;
    let seen = false;
    let notHere = 0;
    let triedEnd = false;
    while (!signal.aborted) {
      let rec: TaskRecord | null;
      try {
        rec = await this.core.readRecord(this.id);
      } catch {
        await sleep(this.core.pollMs * 5, signal); // Redis is unreachable: try again later
        continue;
      }
      if (!rec) {
        if (!seen && !this.last) throw new UnknownTaskError(this.id);
        return; // deleted: clean_end, or its retention passed
      }
      seen = true;
      if (isTerminal(rec.state)) {
        if (this.terminalAttempt !== rec.attempts) {
          // We followed it live and missed its end: the worker may still hold the rest.
          if (!triedEnd && rec.worker && (this.followedLive || this.last?.attempt === rec.attempts)) {
            triedEnd = true;
            if ((await this.stream(rec)) === 'final') continue;
          }
          this.fromRecord(rec);
        }
        if (!this.opts.pastTerminal) return;
        await sleep(Math.max(this.core.pollMs, 1000), signal);
        continue;
      }
      triedEnd = false;
      if (rec.state !== 'RUNNING' || !rec.worker) {
        await sleep(this.core.pollMs, signal); // QUEUED or STOPPED: wait until it runs
        continue;
      }
      const r = await this.stream(rec);
      if (r === 'not-here') await sleep(Math.min(1000, 25 * 2 ** notHere++), signal);
      else if (r === 'failed') await sleep(Math.max(this.core.pool.delay(rec.worker), 50), signal);
      else if (r === 'gone') await sleep(this.core.pollMs, signal);
      // The attempt ended there (its end is STOPPED or TAKEN_OVER, or the worker says so) while the
      // record still names it: a supervisor will move it, so look again later, not at once.
      else if (r === 'ended' || r === 'final') await sleep(this.core.pollMs, signal);
      if (r !== 'not-here') notHere = 0;
    }
  }

  private accept(e: TaskEvent): void {
    const l = this.last;
    if (l && (e.attempt < l.attempt || (e.attempt === l.attempt && e.seq <= l.seq))) return;
    this.last = { attempt: e.attempt, seq: e.type === 'gap' ? e.seq + Number(e.lost) - 1 : e.seq };
    if (isFinal(e) && isTerminal(String(e.state))) this.terminalAttempt = e.attempt;
    this.emit(e);
  }

  /** A terminal record we have no final event for: one state event built from it. */
  private fromRecord(rec: TaskRecord): void {
    const seq = this.last?.attempt === rec.attempts ? this.last.seq + 1 : 1;
    const e: TaskEvent = {
      task: rec.id,
      name: rec.name,
      attempt: rec.attempts,
      seq,
      ts: rec.ended_at ?? rec.updated_at ?? Date.now(),
      type: 'state',
      state: rec.state,
    };
    if (rec.state === 'END') e.result = rec.result;
    else e.error = rec.error;
    this.accept(e);
  }

  /** Subscribes on the worker the record names, until the attempt ends there or something moves. */
  private async stream(rec: TaskRecord): Promise<StreamResult> {
    const { signal } = this.opts;
    const workerId = rec.worker!;
    const addr = await this.core.readWorker(workerId).catch(() => null);
    if (!addr) return 'gone'; // its worker is gone: a distributor will requeue the task
    const wait = this.core.pool.delay(workerId);
    if (wait > 0) await sleep(wait, signal);
    const link = this.core.pool.get(workerId, addr.host, addr.port);
    try {
      await this.core.pool.connect(link);
    } catch {
      return 'failed';
    }
    const q = new AsyncQueue<LinkItem>();
    const sub = link.watch(this.last ? { task: this.id, since: this.last } : { task: this.id }, (it) => q.push(it));
    this.followedLive = true;
    let terminalChecks = 0;
    try {
      for (;;) {
        const it = await q.shift(this.core.recheckMs, signal);
        if (signal.aborted) return 'stopped';
        if (!it) {
          // Quiet for a while: make sure the task is still here (a takeover elsewhere sends nothing here).
          const now = await this.core.readRecord(this.id).catch(() => rec);
          if (!now) return 'moved';
          if (isTerminal(now.state)) {
            if (++terminalChecks >= 2) return 'moved'; // its final event should have come by now
            continue;
          }
          if (now.state !== 'RUNNING' || now.worker !== workerId || now.attempts > Math.max(rec.attempts, this.last?.attempt ?? 0)) return 'moved';
          continue;
        }
        if (it.kind === 'events') {
          for (const e of it.events) {
            this.accept(e);
            if (isFinal(e)) return 'final';
          }
        } else if (it.kind === 'end') return it.reason === 'not-here' ? 'not-here' : 'ended';
        else {
          this.core.pool.noteDrop(workerId);
          return 'failed';
        }
      }
    } finally {
      sub.close();
    }
  }
}
