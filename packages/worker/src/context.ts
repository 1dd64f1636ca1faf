/**
 * The task context (SPEC section 9): identity, the abort signal, and the event calls that feed
 * watchers. Events are numbered per attempt (`seq` from 1) and kept in a bounded buffer.
 */

import type { TaskEvent, TaskEventType } from '@taskmesh/common';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface TaskContext {
  readonly id: string;
  readonly name: string;
  /** 1-based: every start counts, whatever ended the previous one. */
  readonly attempt: number;
  /** Aborts when the task is cancelled, taken over by a newer attempt, or stopped; `reason` says which. */
  readonly signal: AbortSignal;
  progress(done: number, total?: number, message?: string): void;
  log(message: string, level?: LogLevel): void;
  emit(event: string, data?: unknown): void;
  /** 'pause' when the worker lost Redis, 'resume' when a state_optional task may carry on. */
  on(event: 'pause' | 'resume', fn: () => void): TaskContext;
  /**
   * Runs another task registered on this worker, in this attempt (what `compose` builds on). The
   * task gets `ctx` when given (a composition's view, whose progress is scaled into its step's
   * share), else this context.
   */
  call(name: string, input: unknown, ctx?: TaskContext): Promise<unknown>;
}

/**
 * One attempt's event numbering. `seq` starts at 1 and rises by 1; every event goes to `sink`
 * (the Worker hands it to its WatchHub, which owns the bounded replay buffer, so events are not
 * kept twice). The first `state` event other than RUNNING ends the attempt: later pushes (a
 * function still calling ctx.progress after it was taken over) are dropped, so watchers never
 * see events after an attempt's final state.
 *
 * `progress`, `log` and `emit` build their event as one object literal of a fixed shape: a task
 * may call them thousands of times a second, and a spread of a fields object cost more than the
 * rest of the event's way into the replay buffer.
 */
export class EventLog {
  private seq = 0;
  private ended = false;

  /**
   * @param capacity how many events of this attempt the worker means to keep for replay; the
   *   WatchHub's `bufferEvents` option is what enforces it.
   */
  constructor(
    readonly task: string,
    readonly name: string,
    readonly attempt: number,
    readonly capacity: number,
    private readonly sink: (e: TaskEvent) => void,
  ) {}

  /** True once the attempt's final state event was pushed. */
  get closed(): boolean {
    return this.ended;
  }

  /** Numbers and publishes one event; returns null (and publishes nothing) after the final state. */
  push(type: TaskEventType, fields: Record<string, unknown>): TaskEvent | null {
    if (this.ended) return null;
    const e: TaskEvent = { task: this.task, name: this.name, attempt: this.attempt, seq: ++this.seq, ts: Date.now(), type, ...fields };
    if (type === 'state' && fields.state !== 'RUNNING') this.ended = true;
    this.sink(e);
    return e;
  }

  progress(done: number, total: number | null, message: string | null): void {
    if (this.ended) return;
    this.sink({ task: this.task, name: this.name, attempt: this.attempt, seq: ++this.seq, ts: Date.now(), type: 'progress', done, total, message });
  }

  log(level: LogLevel, message: string): void {
    if (this.ended) return;
    this.sink({ task: this.task, name: this.name, attempt: this.attempt, seq: ++this.seq, ts: Date.now(), type: 'log', level, message });
  }

  event(event: string, data: unknown): void {
    if (this.ended) return;
    this.sink({ task: this.task, name: this.name, attempt: this.attempt, seq: ++this.seq, ts: Date.now(), type: 'event', event, data });
  }
}

export function createContext(
  opts: { id: string; name: string; attempt: number; signal: AbortSignal; events: EventLog; on: (event: 'pause' | 'resume', fn: () => void) => void },
  call: (name: string, input: unknown, ctx?: TaskContext) => Promise<unknown>,
): TaskContext {
  const { events } = opts;
  const ctx: TaskContext = {
    id: opts.id,
    name: opts.name,
    attempt: opts.attempt,
    signal: opts.signal,
    progress(done, total, message) {
      events.progress(done, total ?? null, message ?? null);
    },
    log(message, level = 'info') {
      events.log(level, String(message));
    },
    emit(event, data) {
      events.event(String(event), data ?? null);
    },
    on(event, fn) {
      opts.on(event, fn);
      return ctx;
    },
    call,
  };
  return ctx;
}
