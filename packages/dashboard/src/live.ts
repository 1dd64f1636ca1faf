/**
 * Live task state for the page, fed by the watcher protocol (`subscribe({ all: true })`: every
 * task on every live worker, workers that join later included). Events are folded into one row
 * per task, and rows that changed are handed out in batches (`flush`), so a task that reports
 * progress thousands of times a second costs the browser one update per flush, never a backlog.
 */
import type { TaskEvent } from '@taskmesh/common';

export interface LiveTask {
  id: string;
  name: string;
  attempt: number;
  /** RUNNING, or the attempt's final state (END, FAILED, CANCELLED, STOPPED, TAKEN_OVER), or LOST (see reconcile). */
  state: string;
  done: number | null;
  total: number | null;
  message: string | null;
  /** Last `ctx.log` line. */
  log: string | null;
  error: string | null;
  /** ts of the last event. */
  at: number;
  /** When the attempt ended (its final event arrived); null while it runs. */
  endedAt: number | null;
}

/** How long a task that ended stays on the page's running list, so its last state is seen. */
export const ENDED_KEEP_MS = 30_000;
const MAX_TEXT = 500;
/** A row silent this long whose task is on no worker is over (see reconcile). */
export const SILENT_MS = 5_000;

const text = (v: unknown): string | null => (typeof v === 'string' ? v.slice(0, MAX_TEXT) : null);

export class LiveTasks {
  private readonly rows = new Map<string, LiveTask>();
  private readonly dirty = new Set<string>();
  /**
   * Rows pruned since the last flush. `all()` prunes too (a page connecting, /api/state), and the
   * pages already open learn of those removals only from the next flush.
   */
  private readonly removed = new Set<string>();

  /** Folds one event into its task's row. */
  apply(e: TaskEvent): void {
    let row = this.rows.get(e.task);
    // A new attempt (a requeue, a retry) starts a fresh row: its progress starts again.
    if (!row || e.attempt > row.attempt) {
      row = {
        id: e.task,
        name: e.name,
        attempt: e.attempt,
        state: 'RUNNING',
        done: null,
        total: null,
        message: null,
        log: null,
        error: null,
        at: e.ts,
        endedAt: null,
      };
      this.rows.set(e.task, row);
      // Pruned and back (a retry) before the flush: the pages keep the row, with its new attempt.
      this.removed.delete(e.task);
    } else if (e.attempt < row.attempt) {
      return;
    }
    row.at = e.ts;
    switch (e.type) {
      case 'state':
        row.state = String(e.state);
        if (row.state !== 'RUNNING') {
          row.endedAt = Date.now();
          row.error = text(e.error);
        }
        break;
      case 'progress':
        row.done = typeof e.done === 'number' ? e.done : row.done;
        row.total = typeof e.total === 'number' ? e.total : null;
        row.message = text(e.message);
        break;
      case 'log':
        row.log = text(e.message);
        break;
      default:
        // `event` and `gap` change nothing the page draws.
        return;
    }
    this.dirty.add(e.task);
  }

  /**
   * Ends rows whose task is no longer on any worker's task index (`onWorkers`, read from Redis)
   * and that heard nothing for SILENT_MS: their worker died or was cut off, so no final event will
   * come, and the task was requeued or ended elsewhere. A new attempt starts a new row.
   */
  reconcile(onWorkers: ReadonlySet<string>): void {
    const cutoff = Date.now() - SILENT_MS;
    for (const [id, r] of this.rows) {
      if (r.endedAt === null && r.at < cutoff && !onWorkers.has(id)) {
        r.state = 'LOST';
        r.endedAt = Date.now();
        this.dirty.add(id);
      }
    }
  }

  /** Every row (for a browser that just connected), after dropping ended rows past ENDED_KEEP_MS. */
  all(): LiveTask[] {
    this.prune();
    return [...this.rows.values()];
  }

  /** Rows changed since the last flush, and ids removed since then (by this flush or by `all()`). */
  flush(): { tasks: LiveTask[]; removed: string[] } {
    this.prune();
    const removed = [...this.removed];
    this.removed.clear();
    const tasks: LiveTask[] = [];
    for (const id of this.dirty) {
      const r = this.rows.get(id);
      if (r) tasks.push(r);
    }
    this.dirty.clear();
    return { tasks, removed };
  }

  private prune(): void {
    const cutoff = Date.now() - ENDED_KEEP_MS;
    for (const [id, r] of this.rows) {
      if (r.endedAt !== null && r.endedAt < cutoff) {
        this.rows.delete(id);
        this.dirty.delete(id);
        this.removed.add(id);
      }
    }
  }
}
