/**
 * Typed errors with stable codes. Every failure a user can act on carries a literal `code`,
 * so callers branch on `code`, never on message text.
 */

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'UNKNOWN_TASK'
  | 'BAD_ENVELOPE'
  | 'BAD_FRAME'
  | 'AUTH_FAILED'
  | 'TASK_TAKEN_OVER'
  | 'TASK_CANCELLED'
  | 'TASK_STOPPED'
  | 'TIMEOUT'
  | 'REDIS_UNAVAILABLE'
  | 'USAGE'
  // Store, Queue and compose (packages/common/src/{store,queue}, compose.ts).
  | 'JOB_NOT_FOUND'
  | 'JOB_EXISTS'
  | 'LEASE_LOST'
  | 'BAD_ITEM'
  | 'STEP_FAILED';

export class TaskmeshError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TaskmeshError';
    this.code = code;
  }
}

/** A bad config file, key, value or PEM file. The message names the key or file. */
export class ConfigError extends TaskmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
    this.name = 'ConfigError';
  }
}

export class UnknownTaskError extends TaskmeshError {
  constructor(readonly taskId: string) {
    super('UNKNOWN_TASK', `unknown task id: ${taskId}`);
    this.name = 'UnknownTaskError';
  }
}

export class UsageError extends TaskmeshError {
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UsageError';
  }
}

/**
 * The reason a task's `ctx.signal` aborts. `code` tells the function why: taken over by a newer
 * attempt (its writes are refused), cancelled by a client, or stopped (shutdown, lost Redis).
 */
export class TaskAbortError extends TaskmeshError {
  constructor(code: 'TASK_TAKEN_OVER' | 'TASK_CANCELLED' | 'TASK_STOPPED', message: string) {
    super(code, message);
    this.name = 'TaskAbortError';
  }
}
