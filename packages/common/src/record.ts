/** A task record (SPEC section 2) as read from its hash, with numbers as numbers and flags as booleans. */

export const TASK_STATES = ['QUEUED', 'RUNNING', 'STOPPED', 'END', 'FAILED', 'CANCELLED'] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set(['END', 'FAILED', 'CANCELLED']);

export interface TaskRecord {
  id: string;
  name: string;
  config: unknown;
  state: TaskState;
  attempts: number;
  max_attempts: number;
  stalls: number;
  max_stalls: number;
  epoch: number;
  worker: string | null;
  distributor: string | null;
  priority: number;
  created_at: number | null;
  started_at: number | null;
  updated_at: number | null;
  ended_at: number | null;
  result: unknown;
  error: string | null;
  state_optional: boolean;
  clean_end: boolean;
  /** A client asked to cancel it and the owning worker has not confirmed yet. */
  cancel_requested: boolean;
  /** Accepted END writes: 1 for a completed task, whatever number of runs it took. */
  completions: number;
}

const num = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v));

function json(v: string | undefined): unknown {
  if (v === undefined || v === '') return null;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

export function parseRecord(h: Record<string, string>): TaskRecord | null {
  if (!h.id || !h.state) return null;
  return {
    id: h.id,
    name: h.name ?? '',
    config: json(h.config),
    state: h.state as TaskState,
    attempts: num(h.attempts) ?? 0,
    max_attempts: num(h.max_attempts) ?? 0,
    stalls: num(h.stalls) ?? 0,
    max_stalls: num(h.max_stalls) ?? 0,
    epoch: num(h.epoch) ?? 0,
    worker: h.worker || null,
    distributor: h.distributor || null,
    priority: num(h.priority) ?? 0,
    created_at: num(h.created_at),
    started_at: num(h.started_at),
    updated_at: num(h.updated_at),
    ended_at: num(h.ended_at),
    result: json(h.result),
    error: h.error || null,
    state_optional: h.state_optional === '1',
    clean_end: h.clean_end === '1',
    cancel_requested: h.cancel === '1' && !TERMINAL_STATES.has(h.state as TaskState),
    completions: num(h.completions) ?? 0,
  };
}

export function isTerminal(state: string): boolean {
  return TERMINAL_STATES.has(state as TaskState);
}
