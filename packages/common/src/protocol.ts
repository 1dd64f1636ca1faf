/**
 * The wire protocol (docs/protocol.md): JSON text frames over mutual-TLS WebSockets.
 * Every frame goes through `decodeFrame`, which checks it against the schema of its `type` and
 * returns a typed message or a typed error; it never throws.
 */

export const PROTOCOL_VERSION = 1;

/** Application close codes (4000-4999) plus the ws ones we rely on. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  INVALID_UTF8: 1007,
  TOO_BIG: 1009,
  AUTH_FAILED: 4001,
  HANDSHAKE_TIMEOUT: 4002,
  NOT_ALLOWED: 4003,
  PROTOCOL_ERROR: 4004,
  HEALTH_TIMEOUT: 4005,
  DUPLICATE_ID: 4006,
  PREFIX_MISMATCH: 4007,
  CERT_EXPIRED: 4008,
  /** A watcher fell too far behind on its events (docs/protocol.md, "Backpressure"). */
  WATCHER_TOO_SLOW: 4009,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export type TaskEventType = 'state' | 'progress' | 'log' | 'event' | 'gap';

/**
 * One watcher event (SPEC section 5), also what `taskmesh-watch --json` prints. By type:
 * state -> state (+ error or result when terminal); progress -> done, total, message;
 * log -> level, message; event -> event, data; gap -> lost.
 */
export interface TaskEvent {
  task: string;
  name: string;
  attempt: number;
  seq: number;
  ts: number;
  type: TaskEventType;
  [field: string]: unknown;
}

export interface AssignedTask {
  id: string;
  name: string;
  config: unknown;
  epoch: number;
  assignment: string;
  attempt: number;
  state_optional: boolean;
}

/** How an attempt ended, as a worker reports it: the recorded state, or TAKEN_OVER (nothing recorded). */
export const DONE_STATES = ['END', 'FAILED', 'CANCELLED', 'STOPPED', 'TAKEN_OVER'] as const;
export type DoneState = (typeof DONE_STATES)[number];

/** Frames that one `batch` frame carries at most, and its size bound (below any sane maxPayload). */
export const BATCH_MAX_FRAMES = 1000;
export const BATCH_MAX_BYTES = 65536;

export interface TaskRef {
  id: string;
  epoch: number;
  assignment: string;
}

/** Where a `watch` resumes: only events after this (attempt, seq). */
export interface WatchSince {
  attempt: number;
  seq: number;
}

/** Why a watch subscription ended (`watch_end`). */
export type WatchEndReason = 'ended' | 'not-here' | 'unwatched';

export type Message =
  | { type: 'hello'; v: number; role: 'distributor' | 'worker'; id: string; nonce: string }
  | { type: 'auth'; v: number; role: 'worker' | 'watcher'; id: string; nonce: string; mac: string }
  | { type: 'welcome'; id: string; mac: string }
  | { type: 'register'; prefix: string; tasks: string[]; concurrency: number; running: number; watch_host: string; watch_port: number }
  | { type: 'ping'; ts: number; running?: number }
  | { type: 'pong'; ts: number }
  | { type: 'assign'; task: AssignedTask }
  | { type: 'reject'; id: string; epoch: number; assignment: string; reason: string; running: number }
  | { type: 'done'; id: string; epoch: number; assignment: string; state: DoneState; running: number }
  | { type: 'release'; id: string; epoch: number; assignment: string; reason: string; running: number }
  | { type: 'redis'; up: boolean }
  | { type: 'draining' }
  | { type: 'revoke'; id: string; epoch: number; reason: 'taken-over' | 'cancelled' }
  | { type: 'error'; code: string; message: string }
  | { type: 'batch'; frames: Message[] }
  | { type: 'watch'; sub: string; task?: string; name?: string; all?: true; since?: WatchSince; batch?: true }
  | { type: 'unwatch'; sub: string }
  | { type: 'event'; sub: string; event: TaskEvent }
  | { type: 'events'; sub: string; events: TaskEvent[] }
  | { type: 'watch_end'; sub: string; reason: WatchEndReason };

export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

type FieldKind = 'done-state' | 'frames' | 'string' | 'int' | 'number' | 'boolean' | 'string[]' | 'any' | 'task' | 'role-d' | 'role-c' | 'revoke-reason' | 'true' | 'since' | 'task-event' | 'task-events' | 'watch-end-reason';
type FieldSpec = Record<string, FieldKind | `${FieldKind}?`>;

const SCHEMAS: Record<MessageType, FieldSpec> = {
  hello: { v: 'int', role: 'role-d', id: 'string', nonce: 'string' },
  auth: { v: 'int', role: 'role-c', id: 'string', nonce: 'string', mac: 'string' },
  welcome: { id: 'string', mac: 'string' },
  register: { prefix: 'string', tasks: 'string[]', concurrency: 'int', running: 'int', watch_host: 'string', watch_port: 'int' },
  ping: { ts: 'number', running: 'int?' },
  pong: { ts: 'number' },
  assign: { task: 'task' },
  reject: { id: 'string', epoch: 'int', assignment: 'string', reason: 'string', running: 'int' },
  done: { id: 'string', epoch: 'int', assignment: 'string', state: 'done-state', running: 'int' },
  release: { id: 'string', epoch: 'int', assignment: 'string', reason: 'string', running: 'int' },
  redis: { up: 'boolean' },
  draining: {},
  revoke: { id: 'string', epoch: 'int', reason: 'revoke-reason' },
  error: { code: 'string', message: 'string' },
  batch: { frames: 'frames' },
  watch: { sub: 'string', task: 'string?', name: 'string?', all: 'true?', since: 'since?', batch: 'true?' },
  unwatch: { sub: 'string' },
  event: { sub: 'string', event: 'task-event' },
  events: { sub: 'string', events: 'task-events' },
  watch_end: { sub: 'string', reason: 'watch-end-reason' },
};

const SINCE_SPEC: FieldSpec = { attempt: 'int', seq: 'int' };

/** Events one `events` frame carries at most (the worker also keeps each frame within BATCH_MAX_BYTES). */
export const EVENTS_MAX = 1000;

/**
 * The common fields of a task event, checked field by field without the generic spec walk: an
 * `events` frame holds hundreds of them, and this check runs for each (docs/protocol.md, "Events").
 */
function isTaskEvent(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const e = v as Record<string, unknown>;
  return check('string', e.task) && check('string', e.name) && check('int', e.attempt) && check('int', e.seq) && check('number', e.ts) && check('string', e.type);
}

const TASK_SPEC: FieldSpec = { id: 'string', name: 'string', config: 'any', epoch: 'int', assignment: 'string', attempt: 'int', state_optional: 'boolean' };

function check(kind: FieldKind, v: unknown): boolean {
  switch (kind) {
    case 'string': return typeof v === 'string' && v.length <= 4096;
    case 'int': return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'boolean': return typeof v === 'boolean';
    case 'string[]': return Array.isArray(v) && v.length <= 10000 && v.every((s) => typeof s === 'string' && s.length <= 256);
    case 'any': return v !== undefined;
    case 'task': return typeof v === 'object' && v !== null && checkFields(TASK_SPEC, v as Record<string, unknown>) === null;
    case 'role-d': return v === 'distributor' || v === 'worker';
    case 'role-c': return v === 'worker' || v === 'watcher';
    case 'revoke-reason': return v === 'taken-over' || v === 'cancelled';
    case 'done-state': return (DONE_STATES as readonly unknown[]).includes(v);
    case 'frames': return Array.isArray(v) && v.length >= 1 && v.length <= BATCH_MAX_FRAMES;
    case 'true': return v === true;
    case 'since': return typeof v === 'object' && v !== null && checkFields(SINCE_SPEC, v as Record<string, unknown>) === null;
    case 'task-event': return isTaskEvent(v);
    case 'task-events': return Array.isArray(v) && v.length >= 1 && v.length <= EVENTS_MAX && v.every(isTaskEvent);
    case 'watch-end-reason': return v === 'ended' || v === 'not-here' || v === 'unwatched';
  }
}

function checkFields(spec: FieldSpec, o: Record<string, unknown>): string | null {
  for (const [field, k] of Object.entries(spec)) {
    const optional = k.endsWith('?');
    const kind = (optional ? k.slice(0, -1) : k) as FieldKind;
    const v = o[field];
    if (v === undefined && optional) continue;
    if (!check(kind, v)) return `${field}: expected ${kind}`;
  }
  return null;
}

export class FrameError {
  constructor(readonly closeCode: CloseCode, readonly message: string) {}
}

export type Decoded = { ok: true; msg: Message } | { ok: false; error: FrameError };

/** Decodes and validates one text frame. Unknown fields are ignored, so newer peers can add some. */
export function decodeFrame(data: string): Decoded {
  let o: unknown;
  try {
    o = JSON.parse(data);
  } catch {
    return { ok: false, error: new FrameError(CloseCode.PROTOCOL_ERROR, 'frame is not JSON') };
  }
  return checkFrame(o, true);
}

/** Validates one parsed frame; a `batch` is valid only when every frame in it is (no nesting). */
function checkFrame(o: unknown, top: boolean): Decoded {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return { ok: false, error: new FrameError(CloseCode.PROTOCOL_ERROR, 'frame is not a JSON object') };
  const type = (o as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(SCHEMAS, type)) return { ok: false, error: new FrameError(CloseCode.PROTOCOL_ERROR, `unknown frame type ${JSON.stringify(type)}`) };
  const problem = checkFields(SCHEMAS[type as MessageType], o as Record<string, unknown>);
  if (problem) return { ok: false, error: new FrameError(CloseCode.PROTOCOL_ERROR, `${type}.${problem}`) };
  if (type === 'batch') {
    if (!top) return { ok: false, error: new FrameError(CloseCode.PROTOCOL_ERROR, 'batch.frames: a batch cannot hold a batch') };
    const frames = (o as { frames: unknown[] }).frames;
    for (let i = 0; i < frames.length; i++) {
      const inner = checkFrame(frames[i], false);
      if (!inner.ok) return { ok: false, error: new FrameError(CloseCode.PROTOCOL_ERROR, `batch.frames[${i}]: ${inner.error.message}`) };
    }
  }
  return { ok: true, msg: o as Message };
}

export function encodeFrame(msg: Message): string {
  return JSON.stringify(msg);
}
