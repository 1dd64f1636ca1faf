/**
 * Structured logs on stderr through pino: one JSON object per line when stderr is not a TTY (a
 * log pipeline reads it), a short readable line when it is (a person reads it).
 *
 * Every line carries `pid` and `role`; a logger made for a process also carries its `id`, and
 * call sites name the rest the same way everywhere: `task`, `attempt`, `epoch`, `peer`, `worker`,
 * `distributor`, `reason`. Secrets never reach a line: callers pass ids and reasons (never config
 * objects), pino's `redact` censors the fields that could hold one, and every string is scrubbed
 * of URL passwords, private-key PEM blocks and the secrets the loaded configs registered.
 *
 * stdout stays for command output (results, ids, `taskmesh-watch` events): logs never go there.
 */
import pino from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** The kind of process a line comes from. */
export const LOG_ROLES = ['distributor', 'worker', 'watcher', 'cli', 'dashboard'] as const;
export type LogRole = (typeof LOG_ROLES)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose every line also carries `bindings` (e.g. `{ peer }` for one connection). */
  child(bindings: LogFields): Logger;
}

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
}

/**
 * One level for the whole process. Loggers are made at module load and in constructors, before a
 * config is read; they all consult this on every call, so `setLogLevel` (called by `loadConfig`)
 * applies to loggers made earlier and to their children alike. Until a config is loaded the
 * environment's TASKMESH_LOG_LEVEL applies (a bad value is reported by `loadConfig`, not here).
 */
let current: LogLevel = isLogLevel(process.env.TASKMESH_LOG_LEVEL) ? process.env.TASKMESH_LOG_LEVEL : 'info';

export function setLogLevel(level: LogLevel): void {
  if (!isLogLevel(level)) throw new TypeError(`log.level: must be one of ${LOG_LEVELS.join(', ')}`);
  current = level;
}

export function logLevel(): LogLevel {
  return current;
}

/** `auto`: readable lines when stderr is a terminal, JSON lines otherwise. */
export type LogFormat = 'auto' | 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];
const isLogFormat = (v: unknown): v is LogFormat => typeof v === 'string' && (LOG_FORMATS as readonly string[]).includes(v);
let format: LogFormat = isLogFormat(process.env.TASKMESH_LOG_FORMAT) ? process.env.TASKMESH_LOG_FORMAT : 'auto';

/** Set by loadConfig from `log.format`, like the level. */
export function setLogFormat(f: LogFormat): void {
  if (!isLogFormat(f)) throw new TypeError(`log.format: must be one of ${LOG_FORMATS.join(', ')}`);
  format = f;
}

// ---------------------------------------------------------------------------------------------
// Redaction

const CENSOR = '[redacted]';

/**
 * Field paths pino censors, at the top level and one or two levels down: a stray config or
 * options object passed as a field still loses its secrets.
 */
const SECRET_KEYS = ['share_key', 'shareKey', 'password', 'token', 'private_key', 'privateKey', 'authorization', 'cookie'];
const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'tls.key',
  '*.tls.key',
  'redis.url',
  '*.redis.url',
];

/** Exact secret values from loaded configs (share_key, Redis password, tokens). */
const secrets = new Set<string>();

/**
 * Makes `value` unloggable: any line whose message or string field holds it gets `[redacted]` in
 * its place. loadConfig registers the secrets of every config it loads. Very short values are
 * skipped: masking "a" everywhere would garble lines and protects nothing.
 */
export function registerSecret(value: string | null | undefined): void {
  if (typeof value === 'string' && value.length >= 4) secrets.add(value);
}

// The password runs to the authority's last `@` (a password may hold `@`; the host may not).
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:@/]*):([^\s/]+)@/gi;
const PRIVATE_KEY_PEM = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g;

/** A string without URL passwords, private-key PEM blocks or registered secrets. */
export function scrub(s: string): string {
  let out = s;
  if (out.includes('://')) out = out.replace(URL_PASSWORD, `$1$2:${CENSOR}@`);
  if (out.includes('PRIVATE KEY-----')) out = out.replace(PRIVATE_KEY_PEM, CENSOR);
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(CENSOR);
  return out;
}

const SECRET_KEY_SET = new Set(SECRET_KEYS);

/**
 * Field values as they are logged: errors as their (scrubbed) message, strings scrubbed, secret
 * keys censored at any depth, nested values too. Past four levels an object is not walked, so it
 * is not written either: what is not scrubbed must not reach the line.
 */
function clean(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return scrub(v);
  if (v instanceof Error) return scrub(v.message);
  if (v === null || typeof v !== 'object') return v;
  if (depth >= 4) return '[object]';
  if (Array.isArray(v)) return v.map((e) => clean(e, depth + 1));
  if (Buffer.isBuffer(v)) return `<${v.length} bytes>`;
  const out: LogFields = {};
  for (const [k, e] of Object.entries(v as LogFields)) if (e !== undefined) out[k] = SECRET_KEY_SET.has(k) ? CENSOR : clean(e, depth + 1);
  return out;
}

/** clean() that never throws: a field with a throwing getter must not make the log call throw. */
function cleanFields(v: LogFields): LogFields {
  try {
    return clean(v, 0) as LogFields;
  } catch (err) {
    return { unloggable_fields: scrub(err instanceof Error ? err.message : String(err)) };
  }
}

// ---------------------------------------------------------------------------------------------
// Output

const BASE_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'role', 'id', 'msg']);

/** The readable line for a terminal: `HH:MM:SS.mmm LEVEL role[id] pid msg k=v ...`. */
export function prettyLine(json: string): string {
  let o: LogFields;
  try {
    o = JSON.parse(json) as LogFields;
  } catch {
    return json;
  }
  const time = typeof o.time === 'string' ? o.time.slice(11, 23) : '';
  const level = String(o.level ?? '')
    .toUpperCase()
    .padEnd(5);
  const who = `${String(o.role ?? '')}${o.id !== undefined ? `[${String(o.id)}]` : ''}`;
  let fields = '';
  for (const [k, v] of Object.entries(o)) {
    if (BASE_KEYS.has(k) || v === undefined) continue;
    // Strings are quoted only when they would run into the next field; other values are JSON.
    const s = typeof v === 'string' ? (/[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v) : JSON.stringify(v);
    fields += ` ${k}=${s}`;
  }
  return `${time} ${level} ${who} ${String(o.pid ?? '')} ${String(o.msg ?? '')}${fields}\n`;
}

/**
 * Writes through `process.stderr.write`, looked up on each line: it is synchronous for files,
 * pipes and terminals on Linux (so the lines before a `process.exit` are not lost), and tests
 * that watch an in-process logger can spy on it.
 */
const destination = {
  write(line: string): void {
    const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true);
    process.stderr.write(pretty ? prettyLine(line) : line);
  },
};

let root: pino.Logger | undefined;

function rootLogger(): pino.Logger {
  // pino itself passes everything at debug and above: the level is applied by `current` in
  // `wrap`, so a change reaches every logger and child at once.
  root ??= pino(
    {
      level: 'debug',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: CENSOR },
    },
    destination,
  );
  return root;
}

function wrap(p: pino.Logger): Logger {
  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (ORDER[level] < ORDER[current]) return;
    if (fields) p[level](cleanFields(fields), scrub(msg));
    else p[level](scrub(msg));
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (bindings) => wrap(p.child(cleanFields(bindings))),
  };
}

/**
 * A logger for one role of this process; `bindings` go on every line (a daemon passes its `id`).
 * Cheap: pino is set up once, on the first logger.
 */
export function createLogger(role: LogRole, bindings: LogFields = {}): Logger {
  return wrap(rootLogger().child({ role, ...cleanFields(bindings) }));
}
