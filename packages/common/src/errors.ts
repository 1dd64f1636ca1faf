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
  // Connection set-up (HandshakeError): docs/protocol.md, "Error codes".
  | HandshakeErrorCode
  // A Lua script refused a write or answered what no caller expects (ScriptError).
  | ScriptErrorCode
  /** A watcher used a link to a worker after it was closed. */
  | 'LINK_CLOSED'
  // Store, Queue and compose (packages/common/src/{store,queue}, compose.ts).
  | 'JOB_NOT_FOUND'
  | 'JOB_EXISTS'
  | 'LEASE_LOST'
  | 'BAD_ITEM'
  | 'STEP_FAILED';

/**
 * Why a connection did not get past TLS and the share_key handshake. Each has one meaning on the
 * wire (docs/protocol.md, "Error codes"), whichever side notices it.
 */
export type HandshakeErrorCode =
  /** The peer ended the connection during the handshake, with no more specific code. */
  | 'HANDSHAKE_REFUSED'
  /** No (valid) `hello`, `auth` or `welcome` frame in time. Close code 4002. */
  | 'HANDSHAKE_TIMEOUT'
  /** A share_key proof did not match, on either side. Close code 4001. */
  | 'SHARE_KEY_MISMATCH'
  /** TLS refused the peer's certificate (unknown CA, expired, no certificate...). */
  | 'CERT_REJECTED'
  /** The peer's certificate names are not in this side's allow-list. */
  | 'PEER_NOT_ALLOWED'
  /** The server does not accept the client's role. Close code 4003. */
  | 'ROLE_NOT_ACCEPTED'
  /** The peer speaks another protocol version (`v` of hello/auth). Close code 4004. */
  | 'PROTOCOL_VERSION';

export const HANDSHAKE_ERROR_CODES: readonly HandshakeErrorCode[] = [
  'HANDSHAKE_REFUSED',
  'HANDSHAKE_TIMEOUT',
  'SHARE_KEY_MISMATCH',
  'CERT_REJECTED',
  'PEER_NOT_ALLOWED',
  'ROLE_NOT_ACCEPTED',
  'PROTOCOL_VERSION',
];

/**
 * SCRIPT_REPLY_INVALID: a script answered something outside its documented replies (a script and
 * its caller out of step). A refused fenced write is not an error: the start and finish wrappers
 * return it as their result ('refused'), and the run ends TAKEN_OVER.
 */
export type ScriptErrorCode = 'SCRIPT_REPLY_INVALID';

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

/** A connection refused during TLS or the share_key handshake. Branch on `code`. */
export class HandshakeError extends TaskmeshError {
  declare readonly code: HandshakeErrorCode;
  /** The WebSocket close code the peer ended the handshake with, when it sent one. */
  readonly closeCode: number | null;
  /** The TLS or socket error code behind a CERT_REJECTED or HANDSHAKE_REFUSED (e.g. CERT_HAS_EXPIRED). */
  readonly tlsCode: string | null;
  constructor(code: HandshakeErrorCode, message: string, options: { closeCode?: number; tlsCode?: string; cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HandshakeError';
    this.closeCode = options.closeCode ?? null;
    this.tlsCode = options.tlsCode ?? null;
  }
}

/** A Lua script refused a write (its fence moved on) or gave a reply its caller cannot read. */
export class ScriptError extends TaskmeshError {
  declare readonly code: ScriptErrorCode;
  constructor(
    code: ScriptErrorCode,
    readonly script: string,
    message: string,
  ) {
    super(code, message);
    this.name = 'ScriptError';
  }
}
