/**
 * The task context (SPEC section 9): identity, the abort signal, and the event calls that feed
 * watchers. Events are numbered per attempt (`seq` from 1) and kept in a bounded buffer.
 */
import { EventEmitter } from 'node:events';

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
  /** Runs another task registered on this worker, in this attempt (what `compose` builds on). */
  call(name: string, input: unknown): Promise<unknown>;
}

/** A bounded per-attempt event log. */
export class EventLog {
  private seq = 0;
  readonly buffer: TaskEvent[] = [];

  constructor(readonly task: string, readonly name: string, readonly attempt: number, private readonly capacity: number, private readonly sink: (e: TaskEvent) => void) {}

  push(type: TaskEventType, fields: Record<string, unknown>): TaskEvent {
    const e: TaskEvent = { task: this.task, name: this.name, attempt: this.attempt, seq: ++this.seq, ts: Date.now(), type, ...fields };
    this.buffer.push(e);
    if (this.buffer.length > this.capacity) this.buffer.shift();
    this.sink(e);
    return e;
  }
}

export function createContext(
  opts: { id: string; name: string; attempt: number; signal: AbortSignal; events: EventLog; lifecycle: EventEmitter },
  call: (name: string, input: unknown) => Promise<unknown>,
): TaskContext {
  const { events, lifecycle } = opts;
  const ctx: TaskContext = {
    id: opts.id,
    name: opts.name,
    attempt: opts.attempt,
    signal: opts.signal,
    progress(done, total, message) {
      events.push('progress', { done, total: total ?? null, message: message ?? null });
    },
    log(message, level = 'info') {
      events.push('log', { level, message: String(message) });
    },
    emit(event, data) {
      events.push('event', { event: String(event), data: data ?? null });
    },
    on(event, fn) {
      lifecycle.on(event, fn);
      return ctx;
    },
    call,
  };
  return ctx;
}
