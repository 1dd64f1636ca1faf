/**
 * The wire protocol (docs/protocol.md): JSON text frames over mutual-TLS WebSockets.
 * Every frame goes through `decodeFrame`, which checks it against the schema of its `type` and
 * returns a typed message or a typed error; it never throws.
 */
import { Type, type Static, type TProperties, type TSchema } from '@sinclair/typebox';
import { compileChecker, type Checker, type Problem } from './schema-check';

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

/*
 * Every frame is defined once below, as a TypeBox schema: the TypeScript types are its `Static<>`,
 * decodeFrame checks with its compiled form, and docs/schema publishes it as JSON Schema
 * (schema-json.ts, scripts/gen-schema.js) for other languages. A new frame is one more entry in
 * SINGLE_FRAMES and one more type name in its connection's list in schema-json.ts.
 */

/** Field kinds (docs/protocol.md, section 2). Bounds keep a hostile peer from costing memory or time. */
const Str = Type.String({ maxLength: 4096 });
/** A count, epoch or port: a safe integer >= 0 (negative numbers are refused). */
const Int = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** TypeBox's default policy refuses NaN and Infinity, so a `1e999` in a frame is refused too. */
const Num = Type.Number();
const Bool = Type.Boolean();
const Names = Type.Array(Type.String({ maxLength: 256 }), { maxItems: 10000 });

function literals<const T extends string>(values: readonly T[]) {
  return Type.Union(values.map((v) => Type.Literal(v)));
}

function frame<const T extends string, P extends TProperties>(type: T, properties: P, description: string) {
  return Type.Object({ type: Type.Literal(type), ...properties }, { description });
}

export const TASK_EVENT_TYPES = ['state', 'progress', 'log', 'event', 'gap'] as const;
export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];

/**
 * One watcher event (SPEC section 5), also what `taskmesh-watch --json` prints. By type:
 * state -> state (+ error or result when terminal); progress -> done, total, message;
 * log -> level, message; event -> event, data; gap -> lost. Only the fields every event has are
 * checked: the rest come from task code (`ctx.progress('50%')` from plain JavaScript), and one odd
 * event must not make a watcher refuse the whole batch it came in.
 */
export const TaskEventSchema = Type.Object(
  { task: Str, name: Str, attempt: Int, seq: Int, ts: Num, type: literals(TASK_EVENT_TYPES) },
  {
    description:
      'One task event. Fields by type: state -> state (+ result when END, error when FAILED, CANCELLED, STOPPED or TAKEN_OVER); progress -> done, total (number or null), message (string or null); log -> level, message; event -> event, data; gap -> lost. See docs/protocol.md, "Events".',
  },
);
/** The checked fields, plus the fields of its type (see TaskEventSchema). */
export type TaskEvent = Static<typeof TaskEventSchema> & { [field: string]: unknown };

export const AssignedTaskSchema = Type.Object(
  { id: Str, name: Str, config: Type.Unknown(), epoch: Int, assignment: Str, attempt: Int, state_optional: Bool },
  { description: 'One attempt to run. (epoch, assignment) is its fence; attempt counts starts from 1.' },
);
export type AssignedTask = Static<typeof AssignedTaskSchema>;

/** How an attempt ended, as a worker reports it: the recorded state, or TAKEN_OVER (nothing recorded). */
export const DONE_STATES = ['END', 'FAILED', 'CANCELLED', 'STOPPED', 'TAKEN_OVER'] as const;
export type DoneState = (typeof DONE_STATES)[number];

/** Frames that one `batch` frame carries at most, and its size bound (below any sane maxPayload). */
export const BATCH_MAX_FRAMES = 1000;
export const BATCH_MAX_BYTES = 65536;
/** Events one `events` frame carries at most (the worker also keeps each frame within BATCH_MAX_BYTES). */
export const EVENTS_MAX = 1000;

export interface TaskRef {
  id: string;
  epoch: number;
  assignment: string;
}

/** Where a `watch` resumes: only events after this (attempt, seq). */
export const WatchSinceSchema = Type.Object({ attempt: Int, seq: Int }, { description: 'Resume after this event: only events after (attempt, seq) are sent.' });
export type WatchSince = Static<typeof WatchSinceSchema>;

/** Why a watch subscription ended (`watch_end`). */
export const WATCH_END_REASONS = ['ended', 'not-here', 'unwatched'] as const;
export type WatchEndReason = (typeof WATCH_END_REASONS)[number];

/** Every frame but `batch`, keyed by its `type`. One schema per frame. */
const SINGLE_FRAMES = {
  hello: frame('hello', { v: Int, role: literals(['distributor', 'worker']), id: Str, nonce: Str }, 'server -> client: handshake step 1.'),
  auth: frame(
    'auth',
    { v: Int, role: literals(['worker', 'watcher']), id: Str, nonce: Str, mac: Str },
    'client -> server: handshake step 2; mac is the client proof.',
  ),
  welcome: frame('welcome', { id: Str, mac: Str }, 'server -> client: handshake step 3; mac is the server proof.'),
  register: frame(
    'register',
    { prefix: Str, tasks: Names, concurrency: Int, running: Int, watch_host: Str, watch_port: Int },
    'worker -> distributor: its task names and capacity; each one replaces the previous.',
  ),
  ping: frame('ping', { ts: Num, running: Type.Optional(Int) }, 'both: health check every health.interval_ms; running only from a worker to a distributor.'),
  pong: frame('pong', { ts: Num }, 'both: the answer to a ping, with its ts.'),
  assign: frame('assign', { task: AssignedTaskSchema }, 'distributor -> worker: run this attempt.'),
  reject: frame('reject', { id: Str, epoch: Int, assignment: Str, reason: Str, running: Int }, 'worker -> distributor: will not run this attempt.'),
  done: frame(
    'done',
    { id: Str, epoch: Int, assignment: Str, state: literals(DONE_STATES), running: Int },
    'worker -> distributor: this attempt ended; state is what the record holds (TAKEN_OVER: nothing was recorded).',
  ),
  release: frame(
    'release',
    { id: Str, epoch: Int, assignment: Str, reason: Str, running: Int },
    'worker -> distributor: stopped this attempt because the worker lost Redis; please record it.',
  ),
  redis: frame('redis', { up: Bool }, 'worker -> distributor: the worker lost (false) or regained (true) its Redis link.'),
  draining: frame('draining', {}, 'worker -> distributor: the worker is shutting down.'),
  revoke: frame(
    'revoke',
    { id: Str, epoch: Int, reason: literals(['taken-over', 'cancelled']) },
    'distributor -> worker: abort the run of id if its epoch is at or below epoch.',
  ),
  error: frame('error', { code: Str, message: Str }, 'both: the last frame was not acceptable (code BAD_FRAME or UNEXPECTED_FRAME). Never answered.'),
  watch: frame(
    'watch',
    {
      sub: Str,
      task: Type.Optional(Str),
      name: Type.Optional(Str),
      all: Type.Optional(Type.Literal(true)),
      since: Type.Optional(WatchSinceSchema),
      batch: Type.Optional(Type.Literal(true)),
    },
    'watcher -> worker: subscribe. Exactly one of task, name or all; since only with task (the worker answers BAD_FRAME otherwise). batch: deliver events in `events` frames.',
  ),
  unwatch: frame('unwatch', { sub: Str }, 'watcher -> worker: end a subscription.'),
  event: frame('event', { sub: Str, event: TaskEventSchema }, 'worker -> watcher: one event for that subscription.'),
  events: frame(
    'events',
    { sub: Str, events: Type.Array(TaskEventSchema, { minItems: 1, maxItems: EVENTS_MAX }) },
    'worker -> watcher: events of that subscription in order, for a watch that asked for batch.',
  ),
  watch_end: frame('watch_end', { sub: Str, reason: literals(WATCH_END_REASONS) }, 'worker -> watcher: no more events on this subscription.'),
};

type SingleFrames = typeof SINGLE_FRAMES;
type SingleType = keyof SingleFrames;

/** Any frame that may travel inside a batch. */
export const SingleFrameSchema = Type.Union(Object.values(SINGLE_FRAMES) as Array<SingleFrames[SingleType]>);

/** A `batch` of frames of the given schema (the runtime passes every frame; docs/schema those of one connection). */
export function batchOf<T extends TSchema>(inner: T) {
  return frame(
    'batch',
    { frames: Type.Array(inner, { minItems: 1, maxItems: BATCH_MAX_FRAMES }) },
    `both: 1 to ${BATCH_MAX_FRAMES} frames sent in one turn of the sender's event loop; handle each in order as if it came alone. No batch inside a batch.`,
  );
}

/** Every frame's schema, keyed by its `type`. */
export const FRAME_SCHEMAS = { ...SINGLE_FRAMES, batch: batchOf(SingleFrameSchema) };

export type MessageType = keyof typeof FRAME_SCHEMAS;
export type Message = { [K in MessageType]: Static<(typeof FRAME_SCHEMAS)[K]> }[MessageType];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/**
 * One checker per frame type. A batch's checker looks at its shape only: its frames are checked
 * one by one (checkFrame), so a refusal can say which one and why.
 */
const CHECKERS = Object.fromEntries(
  Object.entries({ ...SINGLE_FRAMES, batch: batchOf(Type.Unknown()) }).map(([type, schema]) => [type, compileChecker(schema)]),
) as Record<MessageType, Checker<unknown>>;

export class FrameError {
  constructor(
    readonly closeCode: CloseCode,
    readonly message: string,
  ) {}
}

export type Decoded = { ok: true; msg: Message } | { ok: false; error: FrameError };

function refuse(message: string): Decoded {
  return { ok: false, error: new FrameError(CloseCode.PROTOCOL_ERROR, message) };
}

/** Decodes and validates one text frame. Unknown fields are ignored, so newer peers can add some. */
export function decodeFrame(data: string): Decoded {
  let o: unknown;
  try {
    o = JSON.parse(data);
  } catch {
    return refuse('frame is not JSON');
  }
  return checkFrame(o, true);
}

/** Validates one parsed frame; a `batch` is valid only when every frame in it is (no nesting). */
function checkFrame(o: unknown, top: boolean): Decoded {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return refuse('frame is not a JSON object');
  const type = (o as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(FRAME_SCHEMAS, type)) return refuse(`unknown frame type ${JSON.stringify(type)}`);
  if (type === 'batch' && !top) return refuse('a batch cannot hold a batch');
  const checker = CHECKERS[type as MessageType];
  if (!checker.check(o)) return refuse(explain(type, checker.problem(o)));
  if (type === 'batch') {
    const frames = (o as { frames: unknown[] }).frames;
    for (let i = 0; i < frames.length; i++) {
      const inner = checkFrame(frames[i], false);
      if (!inner.ok) return refuse(`batch.frames[${i}]: ${inner.error.message}`);
    }
  }
  return { ok: true, msg: o as Message };
}

/** `<type>.<field>: expected <what>, got <what>`, e.g. `ping.ts: expected a finite number, got "now"`. */
function explain(type: string, p: Problem | null): string {
  // Only if the compiled check and TypeBox's error walk disagreed, which they should not.
  if (!p) return `${type}: invalid frame`;
  return `${type}${p.path}: ${p.missing ? `missing, expected ${p.expected}` : `expected ${p.expected}, got ${p.got}`}`;
}

export function encodeFrame(msg: Message): string {
  return JSON.stringify(msg);
}
