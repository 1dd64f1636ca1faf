/**
 * The task envelope (SPEC section 2): one JSON entry of the `new-task` list. Parsing never throws:
 * it returns the typed fields or the reason the envelope goes to the dead list.
 */
import { v4 as uuidv4 } from 'uuid';
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

export interface EnvelopeInput {
  name: string;
  config?: unknown;
  id?: string;
  max_attempts?: number;
  max_stalls?: number;
  priority?: number;
  state_optional?: boolean;
  clean_end?: boolean;
}

export type ParsedEnvelope = { ok: true; fields: EnvelopeFields } | { ok: false; reason: string; id?: string };

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** Validates an envelope object; a missing id is generated. */
export function validateEnvelope(o: unknown): ParsedEnvelope {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return { ok: false, reason: 'envelope is not a JSON object' };
  const e = o as Record<string, unknown>;
  if (typeof e.name !== 'string') return { ok: false, reason: 'name: missing or not a string' };
  if (!TASK_NAME_RE.test(e.name)) return { ok: false, reason: 'name: must match [A-Za-z0-9_-]{1,128}' };
  if (e.id !== undefined && (typeof e.id !== 'string' || !TASK_ID_RE.test(e.id))) return { ok: false, reason: 'id: must be a UUID (or 1-128 of [A-Za-z0-9_.:-])' };
  if (e.config !== undefined && (typeof e.config !== 'object' || e.config === null || Array.isArray(e.config))) return { ok: false, reason: 'config: must be a JSON object' };
  for (const k of ['max_attempts', 'max_stalls'] as const) {
    if (e[k] !== undefined && !(isInt(e[k]) && (e[k] as number) >= 1)) return { ok: false, reason: `${k}: must be an integer >= 1` };
  }
  if (e.priority !== undefined && !(isInt(e.priority) && Math.abs(e.priority) <= PRIORITY_LIMIT)) return { ok: false, reason: `priority: must be an integer from -${PRIORITY_LIMIT} to ${PRIORITY_LIMIT}` };
  for (const k of ['state_optional', 'clean_end'] as const) {
    if (e[k] !== undefined && typeof e[k] !== 'boolean') return { ok: false, reason: `${k}: must be a boolean` };
  }
  return {
    ok: true,
    fields: {
      id: (e.id as string | undefined) ?? uuidv4(),
      name: e.name,
      config: JSON.stringify(e.config ?? {}),
      max_attempts: (e.max_attempts as number | undefined) ?? ENVELOPE_DEFAULTS.max_attempts,
      max_stalls: (e.max_stalls as number | undefined) ?? ENVELOPE_DEFAULTS.max_stalls,
      priority: (e.priority as number | undefined) ?? ENVELOPE_DEFAULTS.priority,
      state_optional: (e.state_optional as boolean | undefined) ?? ENVELOPE_DEFAULTS.state_optional,
      clean_end: (e.clean_end as boolean | undefined) ?? ENVELOPE_DEFAULTS.clean_end,
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
