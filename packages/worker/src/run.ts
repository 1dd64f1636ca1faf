/**
 * One attempt on this worker, and the table of them. A run is in exactly one phase:
 * - running:   its function executes and it holds one of the worker's concurrency slots;
 * - recording: its function has returned and its end is being written (fenced, so safe to land
 *              late); the slot is free, but a new attempt of the same task must wait;
 * - abandoned: the worker shut down and recorded STOPPED for it while its function ignored its
 *              signal; whatever it returns later is dropped.
 * A settled run has left the table.
 */
import { EventEmitter } from 'node:events';
import { TaskAbortError, type AssignedTask } from '@taskmesh/common';
import type { Fence } from '@taskmesh/common/internal';
import type { EventLog } from './context';

export type RunPhase = 'running' | 'recording' | 'abandoned';
export type AbortCode = 'TASK_TAKEN_OVER' | 'TASK_CANCELLED' | 'TASK_STOPPED';

export class Run {
  phase: RunPhase = 'running';
  /** Taken over by a newer attempt: no longer in the worker's task index, whatever it still does. */
  detached = false;
  readonly fence: Fence;
  readonly ctrl = new AbortController();
  /** 'pause'/'resume' listeners (ctx.on): made for the few runs that ask, not for every run. */
  private lifecycle: EventEmitter | undefined;

  /**
   * @param distributorId config id of the distributor that assigned it
   */
  constructor(
    readonly task: AssignedTask,
    readonly distributorId: string,
    readonly events: EventLog,
  ) {
    this.fence = { epoch: task.epoch, assignment: task.assignment };
  }

  get id(): string {
    return this.task.id;
  }

  /** Why its signal aborted, if it did. */
  get abortCode(): AbortCode | undefined {
    const r = this.ctrl.signal.reason as unknown;
    return this.ctrl.signal.aborted && r instanceof TaskAbortError ? (r.code as AbortCode) : undefined;
  }

  /**
   * Aborts its signal; false if it was already aborted. A run taken over by a newer attempt
   * records nothing, so the worker pushes no final state for it: its events end here, before the
   * function's own abort listeners run, or its watchers would wait on an attempt that can never
   * finish.
   */
  abort(code: AbortCode, message: string): boolean {
    if (this.ctrl.signal.aborted) return false;
    if (code === 'TASK_TAKEN_OVER') this.events.push('state', { state: 'TAKEN_OVER', error: message });
    this.ctrl.abort(new TaskAbortError(code, message));
    return true;
  }

  onLifecycle(event: 'pause' | 'resume', fn: () => void): void {
    (this.lifecycle ??= new EventEmitter()).on(event, fn);
  }

  /** Tells the function's 'pause'/'resume' listeners, if it has any. */
  emitLifecycle(event: 'pause' | 'resume'): void {
    this.lifecycle?.emit(event);
  }
}

/** The runs of this worker by task id, with the count of those holding a slot. */
export class RunTable {
  private readonly byId = new Map<string, Run>();
  private slots = 0;
  private detachedCount = 0;

  /** Runs the worker's task index should hold: every run but those taken over. */
  get indexed(): number {
    return this.byId.size - this.detachedCount;
  }

  /** Marks a run taken over (it left the task index when its attempt was requeued). */
  detach(run: Run): void {
    if (run.detached || this.byId.get(run.id) !== run) return;
    run.detached = true;
    this.detachedCount++;
  }

  /** Runs holding a concurrency slot (phase running). */
  get running(): number {
    return this.slots;
  }

  /** Every run in the table, whatever its phase. */
  get size(): number {
    return this.byId.size;
  }

  get(id: string): Run | undefined {
    return this.byId.get(id);
  }

  add(run: Run): void {
    this.byId.set(run.id, run);
    if (run.phase === 'running') this.slots++;
  }

  /** Moves a run to another phase; leaving `running` frees its slot. */
  move(run: Run, phase: RunPhase): void {
    if (run.phase === phase) return;
    if (this.byId.get(run.id) === run && run.phase === 'running') this.slots--;
    run.phase = phase;
  }

  /** Removes this run (never a newer run of the same task). */
  remove(run: Run): void {
    if (this.byId.get(run.id) !== run) return;
    if (run.phase === 'running') this.slots--;
    if (run.detached) this.detachedCount--;
    this.byId.delete(run.id);
  }

  /** Runs whose function executes. */
  *active(): IterableIterator<Run> {
    for (const r of this.byId.values()) if (r.phase === 'running') yield r;
  }
}
