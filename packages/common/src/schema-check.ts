/**
 * Compiled TypeBox checkers that explain themselves. A frame or an envelope is checked by a
 * compiled function (fast, no allocation on success); only a refused value is walked again by
 * TypeBox's error iterator, and its first error becomes one line that names the field and says
 * what it should be. The wording is derived from the schema itself, so messages cannot drift from
 * the rules (and the published JSON Schema in docs/schema says the same).
 */
import { Kind, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';

/** What is wrong with a value: where (a dotted path, empty for the value itself), and how. */
export interface Problem {
  /** `.task.epoch`, `.tasks[0]`, or '' for the value itself. */
  path: string;
  /** True when a required field is absent. */
  missing: boolean;
  /** What the schema wants there, e.g. `an integer >= 1`, `one of "END", "FAILED"`. */
  expected: string;
  /** What came instead, safe to log: short strings, numbers and booleans as JSON, else their kind. */
  got: string;
}

export interface Checker<T> {
  /** True when the value matches; narrows it. */
  check(value: unknown): value is T;
  /** The first problem, or null when the value matches. Call it only after `check` failed: it is slow. */
  problem(value: unknown): Problem | null;
}

/**
 * A checker for a schema, compiled on its first use (so a process that never checks one pays
 * nothing at start-up) and once only: keep the result at module level.
 */
export function compileChecker<T extends TSchema>(schema: T): Checker<Static<T>> {
  let compiled: TypeCheck<T> | undefined;
  const get = (): TypeCheck<T> => (compiled ??= TypeCompiler.Compile(schema));
  return {
    check: (value: unknown): value is Static<T> => get().Check(value),
    problem(value: unknown): Problem | null {
      const first = get().Errors(value).First();
      return first ? toProblem(first) : null;
    },
  };
}

function toProblem(e: ValueError): Problem {
  const missing = e.type === ValueErrorType.ObjectRequiredProperty;
  return { path: dotted(e.path), missing, expected: describe(e.schema), got: missing ? 'nothing' : describeValue(e.value) };
}

/** JSON Pointer (`/task/epoch`, `/tasks/0`) to the dotted form used in messages (`.task.epoch`, `.tasks[0]`). */
function dotted(pointer: string): string {
  if (pointer === '') return '';
  return pointer
    .slice(1)
    .split('/')
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((seg) => (/^(0|[1-9][0-9]*)$/.test(seg) ? `[${seg}]` : `.${seg}`))
    .join('');
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** A short English description of what a schema accepts. Covers the kinds the protocol uses. */
export function describe(schema: TSchema): string {
  const s = schema as TSchema & Record<string, unknown>;
  switch (s[Kind]) {
    case 'String': {
      if (typeof s.pattern === 'string') return `a string matching ${s.pattern.replace(/^\^/, '').replace(/\$$/, '')}`;
      const range = countRange(s.minLength, s.maxLength);
      return range ? `a string of ${range} characters` : 'a string';
    }
    case 'Integer': {
      // A maximum of 2^53-1 only says "exactly representable": name it instead of printing it.
      const safe = s.maximum === MAX_SAFE;
      const max = safe ? undefined : (s.maximum as number | undefined);
      const min = s.minimum as number | undefined;
      const noun = safe ? 'a safe integer' : 'an integer';
      if (min !== undefined && max !== undefined) return `${noun} from ${min} to ${max}`;
      if (min !== undefined) return `${noun} >= ${min}`;
      if (max !== undefined) return `${noun} <= ${max}`;
      return noun;
    }
    case 'Number':
      return 'a finite number';
    case 'Boolean':
      return 'a boolean';
    case 'Null':
      return 'null';
    case 'Literal':
      return JSON.stringify(s.const);
    case 'Union': {
      const options = (s.anyOf as TSchema[]).map(describe);
      if ((s.anyOf as TSchema[]).every((o) => o[Kind] === 'Literal') && options.length > 2) return `one of ${options.join(', ')}`;
      return options.join(' or ');
    }
    case 'Array': {
      const range = countRange(s.minItems, s.maxItems);
      return range ? `an array of ${range} items` : 'an array';
    }
    case 'Object':
      return 'a JSON object';
    case 'Unknown':
      return 'any JSON value';
    default:
      return typeof s.type === 'string' ? s.type : 'a valid value';
  }
}

function countRange(min: unknown, max: unknown): string {
  const lo = typeof min === 'number' && min > 0 ? min : undefined;
  const hi = typeof max === 'number' ? max : undefined;
  if (lo !== undefined && hi !== undefined) return `${lo} to ${hi}`;
  if (hi !== undefined) return `at most ${hi}`;
  if (lo !== undefined) return `at least ${lo}`;
  return '';
}

/** Describes a received value without echoing anything long (a frame may carry user data). */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length} items`;
  switch (typeof v) {
    case 'string':
      return v.length <= 32 ? JSON.stringify(v) : `a string of ${v.length} characters`;
    case 'number':
    case 'boolean':
      return String(v);
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}
