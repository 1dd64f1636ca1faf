/**
 * The task envelope (SPEC section 2): one JSON entry of the `new-task` list. Parsing never throws:
 * it returns the typed fields or the reason the envelope goes to the dead list.
 */
import { Type, type Static } from '@sinclair/typebox';
import { randomUUID } from 'node:crypto';
import { compileChecker, type Problem } from './schema-check';
import type { EnvelopeFields } from './scripts';

export const TASK_NAME_RE = /^[A-Za-z0-9_-]{1,128}$/;
/** A UUID is what producers normally send; any id of these characters is accepted. */
export const TASK_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
export const PRIORITY_LIMIT = 1000;
const LEADING_ID_RE = /^\s*\{\s*"id"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"/;
/**
 * Room kept for the rest of an assign frame (type, id, name, epoch, assignment...) around a task's
 * config: a config that would not fit in one frame of limits.max_message_bytes is refused at once,
 * instead of being assigned and then breaking the worker's connection.
 */
export const FRAME_OVERHEAD_BYTES = 1024;

export const ENVELOPE_DEFAULTS = { max_attempts: 3, max_stalls: 5, priority: 0, state_optional: false, clean_end: false } as const;

/**
 * The envelope, defined once: EnvelopeInput is its static type, validateEnvelope checks with its
 * compiled form, and docs/schema/envelope.schema.json publishes it for producers in other languages.
 */
export const EnvelopeSchema = Type.Object(
  {
    name: Type.String({ pattern: TASK_NAME_RE.source, description: 'The task function to run.' }),
    id: Type.Optional(Type.String({ pattern: TASK_ID_RE.source, description: 'The task id, normally a UUID. Generated when absent.' })),
    config: Type.Optional(Type.Object({}, { description: "The task's input, a JSON object.", default: {} })),
    max_attempts: Type.Optional(
      Type.Integer({ minimum: 1, default: ENVELOPE_DEFAULTS.max_attempts, description: 'Starts allowed before the task is FAILED.' }),
    ),
    max_stalls: Type.Optional(
      Type.Integer({ minimum: 1, default: ENVELOPE_DEFAULTS.max_stalls, description: 'Requeues after a lost worker allowed before the task is FAILED.' }),
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: -PRIORITY_LIMIT,
        maximum: PRIORITY_LIMIT,
        default: ENVELOPE_DEFAULTS.priority,
        description: 'Higher runs first where the queue kind uses it.',
      }),
    ),
    state_optional: Type.Optional(
      Type.Boolean({ default: ENVELOPE_DEFAULTS.state_optional, description: 'May keep running while its worker has no Redis link.' }),
    ),
    clean_end: Type.Optional(Type.Boolean({ default: ENVELOPE_DEFAULTS.clean_end, description: 'Delete the record once the task ENDs.' })),
  },
  { description: 'One entry of the <prefix>new-task list (SPEC section 2). Unknown fields are ignored.' },
);
export type EnvelopeInput = Static<typeof EnvelopeSchema>;

export type ParsedEnvelope = { ok: true; fields: EnvelopeFields } | { ok: false; reason: string; id?: string };

const envelope = compileChecker(EnvelopeSchema);

/**
 * `<field>: must be <what>`, the dead list's reason for a refused envelope (docs/failure-model.md
 * lists them). For `name` and `id` the reasons say it in their own words, clearer than a regex.
 */
function reason(o: object, p: Problem | null): string {
  // Only if the compiled check and TypeBox's error walk disagreed, which they should not.
  if (!p) return 'envelope is invalid';
  const field = p.path.replace(/^\./, '');
  if (field === 'name') return typeof (o as { name?: unknown }).name === 'string' ? 'name: must match [A-Za-z0-9_-]{1,128}' : 'name: missing or not a string';
  if (field === 'id') return 'id: must be a UUID (or 1-128 of [A-Za-z0-9_.:-])';
  return p.missing ? `${field}: missing (must be ${p.expected})` : `${field}: must be ${p.expected}`;
}

/** Validates an envelope object; a missing id is generated. */
export function validateEnvelope(o: unknown): ParsedEnvelope {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return { ok: false, reason: 'envelope is not a JSON object' };
  if (!envelope.check(o)) return { ok: false, reason: reason(o, envelope.problem(o)) };
  return {
    ok: true,
    fields: {
      id: o.id ?? randomUUID(),
      name: o.name,
      config: JSON.stringify(o.config ?? {}),
      max_attempts: o.max_attempts ?? ENVELOPE_DEFAULTS.max_attempts,
      max_stalls: o.max_stalls ?? ENVELOPE_DEFAULTS.max_stalls,
      priority: o.priority ?? ENVELOPE_DEFAULTS.priority,
      state_optional: o.state_optional ?? ENVELOPE_DEFAULTS.state_optional,
      clean_end: o.clean_end ?? ENVELOPE_DEFAULTS.clean_end,
    },
  };
}

/** Checks that a validated envelope's config fits in one assign frame. */
export function checkFrameSize(fields: EnvelopeFields, maxBytes: number): string | null {
  const size = Buffer.byteLength(fields.config, 'utf8');
  return size + FRAME_OVERHEAD_BYTES > maxBytes
    ? `config is ${size} bytes: with ${FRAME_OVERHEAD_BYTES} bytes for the rest of the frame it does not fit limits.max_message_bytes (${maxBytes})`
    : null;
}

/**
 * Parses one raw list entry, enforcing the size limits. Never throws. A refused envelope that
 * names a task id says so, so a record created for it can be failed rather than wait forever.
 */
export function parseEnvelope(raw: string, maxBytes: number): ParsedEnvelope {
  const size = Buffer.byteLength(raw, 'utf8');
  const over = `envelope is ${size} bytes, over the limit of ${maxBytes} (limits.max_message_bytes)`;
  // Far too big to parse; TaskClient writes the id first, so its head still says which task it named.
  if (size > 16 * maxBytes) {
    const id = LEADING_ID_RE.exec(raw.slice(0, 200))?.[1];
    return id ? { ok: false, reason: over, id } : { ok: false, reason: over };
  }
  let o: unknown;
  try {
    o = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: size > maxBytes ? over : `not JSON: ${(err as Error).message}` };
  }
  const named = (o as { id?: unknown } | null)?.id;
  const id = typeof named === 'string' && TASK_ID_RE.test(named) ? named : undefined;
  const refuse = (reason: string): ParsedEnvelope => (id ? { ok: false, reason, id } : { ok: false, reason });
  if (size > maxBytes) return refuse(over);
  try {
    const parsed = validateEnvelope(o);
    if (!parsed.ok) return refuse(parsed.reason);
    const tooBig = checkFrameSize(parsed.fields, maxBytes);
    return tooBig ? refuse(tooBig) : parsed;
  } catch (err) {
    // For example a config nested deeper than JSON.stringify can recurse.
    return refuse(`unusable envelope: ${(err as Error).message}`);
  }
}
