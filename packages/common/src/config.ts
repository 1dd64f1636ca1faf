/**
 * Configuration: one convict schema per role, the single source of defaults and docs.
 * A file named by `--config FILE` (or `TASKMESH_CONFIG`), overridden per key by `TASKMESH_<PATH>`,
 * validated strictly (a key of another role is refused like a typo), then resolved once into a
 * typed object with the PEM files already read.
 */
import type { Redis } from 'ioredis';
import { QUEUE_KINDS, type QueueKind } from './queue/types';
import convict from 'convict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from './errors';
import { LOG_FORMATS, LOG_LEVELS, registerSecret, setLogFormat, setLogLevel, type LogFormat, type LogLevel } from './log';

export type Role = 'distributor' | 'worker' | 'watcher' | 'cli' | 'dashboard';

export interface RedisConfig {
  url: string;
  host: string | null;
  port: number | null;
  db: number | null;
  password: string | null;
  prefix: string;
  command_timeout_ms: number;
  /**
   * Sentinels to ask for the primary ([host, port] pairs); null = no Sentinel. Optional here only
   * so a hand-built RedisConfig keeps compiling; loadConfig always sets it.
   */
  sentinels?: Array<[string, number]> | null;
  /** The primary's name as the sentinels know it (`sentinel monitor NAME ...`). */
  sentinel_name?: string;
  /** Seed nodes of a Redis Cluster ([host, port] pairs); null = not a cluster. */
  cluster?: Array<[string, number]> | null;
  /**
   * An existing ioredis connection to share (set in code, never in a config file). The process
   * uses it as it is (its options are the owner's) and never closes it.
   */
  client?: Redis;
}

export interface TlsMaterial {
  /** PEM text, read from the configured paths. */
  key: string;
  cert: string;
  ca: string;
}

export interface BaseConfig {
  role: Role;
  id: string;
  share_key: string;
  redis: RedisConfig;
  limits: { max_message_bytes: number };
  /**
   * level: the least severe log line written (`debug`, `info`, `warn`, `error`); format: `json`
   * lines, readable `pretty` lines, or `auto` (pretty on a terminal, JSON otherwise). Optional
   * here only so a hand-built config keeps compiling; loadConfig always sets it.
   */
  log?: { level: LogLevel; format: LogFormat };
}

export interface HealthConfig {
  interval_ms: number;
  misses: number;
}

/** The Prometheus endpoint of a distributor or worker (`metrics.*`). */
export interface MetricsConfig {
  /** Address the endpoint binds to. */
  host: string;
  /** null (the default) = no endpoint; 0 = any free port (the real one is logged). */
  port: number | null;
}

export interface DistributorConfig extends BaseConfig {
  role: 'distributor';
  tls: TlsMaterial;
  host: string;
  port: number;
  advertise_host: string;
  health: HealthConfig;
  metrics: MetricsConfig;
  watch: { own_interval_ms: number; all_interval_ms: number; stale_ms: number };
  retry: { backoff_ms: number; backoff_max_ms: number };
  /** terminal_ms: how long a terminal record is kept after it ended; 0 keeps it forever. */
  retention: { terminal_ms: number };
  /**
   * The order runnable tasks are handed out: 'priority' (higher priority first, FIFO among
   * equals: plain FIFO for envelopes without a priority), 'fifo' (arrival only), 'random' (a
   * uniform sample), 'weighted' (names drawn by `weights`, default 1 each). One kind per mesh.
   */
  queue: { kind: QueueKind; weights: Record<string, number> };
  allow: { workers: string[] };
}

export interface WorkerConfig extends BaseConfig {
  role: 'worker';
  tls: TlsMaterial;
  host: string;
  port: number;
  advertise_host: string;
  distributors: Array<[string, number]>;
  concurrency: number;
  health: HealthConfig;
  metrics: MetricsConfig;
  shutdown_grace_ms: number;
  allow: { distributors: string[]; watchers: string[] };
}

export interface WatcherConfig extends BaseConfig {
  role: 'watcher';
  tls: TlsMaterial;
}

/**
 * The web dashboard (`taskmesh dashboard`): a watcher (it follows tasks with its own certificate)
 * that also serves a page on `dashboard.host:port`.
 */
export interface DashboardConfig extends BaseConfig {
  role: 'dashboard';
  tls: TlsMaterial;
  dashboard: {
    /** Address the page binds to. Loopback by default: the page shows every task's config and errors. */
    host: string;
    /** Port of the page (0 = any free port; the real one is printed). */
    port: number;
    /** Bearer token that cancel and retry need; null = only a client certificate may (with `tls`). */
    token: string | null;
    /** Serve HTTPS with this process's key/cert, and accept client certificates of `ca` in place of the token. */
    tls: boolean;
  };
}

/** What the `taskmesh` CLI needs: Redis; certificates optional. */
export interface CliConfig extends BaseConfig {
  role: 'cli';
  tls: TlsMaterial | null;
}

export type ConfigFor<R extends Role> = R extends 'distributor'
  ? DistributorConfig
  : R extends 'worker'
    ? WorkerConfig
    : R extends 'watcher'
      ? WatcherConfig
      : R extends 'dashboard'
        ? DashboardConfig
        : CliConfig;

/** Coercion must not throw (convict runs it outside validation): an unparsable value stays a string and fails validation with the key's name. */
function parseJsonOr(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

const positiveInt = (name: string) => ({
  name,
  validate(v: unknown) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error('must be an integer >= 1');
  },
  coerce: (v: string) => Number(v),
});

convict.addFormat(positiveInt('positive-int'));
convict.addFormat({
  name: 'weight-map',
  validate(v: unknown) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('must be an object of task name to weight');
    for (const [k, w] of Object.entries(v)) {
      if (typeof w !== 'number' || !Number.isFinite(w) || w <= 0) throw new Error(`weight of ${k} must be a number > 0`);
    }
  },
  coerce: (v: string) => parseJsonOr(v),
});
convict.addFormat({
  name: 'nonneg-int',
  validate(v: unknown) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error('must be an integer >= 0');
  },
  coerce: (v: string) => Number(v),
});
convict.addFormat({
  name: 'port-or-zero',
  validate(v: unknown) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new Error('must be a port number 0-65535');
  },
  coerce: (v: string) => Number(v),
});
convict.addFormat({
  name: 'nullable-string',
  validate(v: unknown) {
    if (v !== null && typeof v !== 'string') throw new Error('must be a string');
  },
});
convict.addFormat({
  name: 'nullable-port',
  validate(v: unknown) {
    if (v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)) throw new Error('must be a port number 1-65535');
  },
  coerce: (v: string) => Number(v),
});
// null (no endpoint), or a port where 0 means any free one; an empty variable means null.
convict.addFormat({
  name: 'nullable-port-or-zero',
  validate(v: unknown) {
    if (v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535))
      throw new Error('must be a port number 0-65535 (0 = any free port), or null for no endpoint');
  },
  coerce: (v: string) => (v.trim() === '' || v === 'null' ? null : Number(v)),
});
convict.addFormat({
  name: 'nullable-db',
  validate(v: unknown) {
    if (v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) throw new Error('must be an integer >= 0');
  },
  coerce: (v: string) => Number(v),
});
convict.addFormat({
  name: 'string-list',
  validate(v: unknown) {
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s.length > 0)) throw new Error('must be an array of non-empty strings');
  },
  coerce: (v: string) =>
    v.trim().startsWith('[')
      ? parseJsonOr(v)
      : v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
});
/** A non-empty list of [host, port] pairs (`distributors`, `redis.sentinels`, `redis.cluster`). */
function isHostPortList(v: unknown): boolean {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && e[0].length > 0 && Number.isInteger(e[1]) && e[1] > 0 && e[1] <= 65535)
  );
}
convict.addFormat({
  name: 'host-port-list',
  validate(v: unknown) {
    if (!isHostPortList(v)) throw new Error('must be a non-empty array of [host, port] pairs, e.g. [["localhost", 5000]]');
  },
  coerce: (v: string) => parseJsonOr(v),
});
// null (the default: not used) or the same non-empty [host, port] list as `distributors`, given as
// JSON in a file or in its TASKMESH_* variable.
convict.addFormat({
  name: 'nullable-host-port-list',
  validate(v: unknown) {
    if (v !== null && !isHostPortList(v)) throw new Error('must be a non-empty array of [host, port] pairs, e.g. [["127.0.0.1", 26379]]');
  },
  coerce: (v: string) => parseJsonOr(v),
});
convict.addFormat({
  name: 'non-empty-string',
  validate(v: unknown) {
    if (typeof v !== 'string' || v.length === 0) throw new Error('must be a non-empty string');
  },
});
// A token short enough to guess would make the dashboard's buttons everyone's.
convict.addFormat({
  name: 'dashboard-token',
  validate(v: unknown) {
    if (v !== null && (typeof v !== 'string' || v.length < 16 || /\s/.test(v)))
      throw new Error('must be a string of at least 16 characters without spaces, or null (no token)');
  },
  coerce: (v: string) => (v === 'null' || v.trim() === '' ? null : v),
});
convict.addFormat({
  name: 'optional-string',
  validate(v: unknown) {
    if (v !== null && (typeof v !== 'string' || v.length === 0)) throw new Error('must be a non-empty string');
  },
});

const env = (path: string): string => 'TASKMESH_' + path.toUpperCase().replace(/\./g, '_');

type Schema = Record<string, unknown>;

function leaf(path: string, spec: { doc: string; format: unknown; default: unknown; sensitive?: boolean }): Schema {
  return { ...spec, env: env(path) };
}

function baseSchema(role: Role): Schema {
  const certsOptional = role === 'cli';
  const pem = (name: string, doc: string) =>
    leaf(name, { doc, format: certsOptional ? 'optional-string' : 'non-empty-string', default: certsOptional ? null : '' });
  return {
    id: leaf('id', {
      doc: 'This process id, recorded in Redis and in task records',
      format: 'non-empty-string',
      default: `${role}-${hostname()}-${process.pid}`,
    }),
    share_key: leaf('share_key', {
      doc: 'Shared secret proven (never sent) in the WebSocket handshake',
      format: certsOptional ? 'optional-string' : 'non-empty-string',
      default: certsOptional ? null : '',
      sensitive: true,
    }),
    key: pem('key', 'Path to this process private key (PEM)'),
    cert: pem('cert', 'Path to this process certificate (PEM)'),
    ca: pem('ca', 'Path to the CA certificate(s) that peers must chain to (PEM)'),
    redis: {
      url: leaf('redis.url', { doc: 'Redis URL', format: 'non-empty-string', default: 'redis://127.0.0.1:6379' }),
      host: leaf('redis.host', { doc: 'Redis host (overrides the URL host)', format: 'nullable-string', default: null }),
      port: leaf('redis.port', { doc: 'Redis port (overrides the URL port)', format: 'nullable-port', default: null }),
      db: leaf('redis.db', { doc: 'Redis database number (overrides the URL)', format: 'nullable-db', default: null }),
      password: leaf('redis.password', { doc: 'Redis password (overrides the URL)', format: 'nullable-string', default: null, sensitive: true }),
      prefix: leaf('redis.prefix', { doc: 'Key prefix, e.g. "{tm}:" for Redis Cluster', format: 'non-empty-string', default: 'taskmesh:' }),
      command_timeout_ms: leaf('redis.command_timeout_ms', { doc: 'Upper bound on every Redis command', format: 'positive-int', default: 1000 }),
      sentinels: leaf('redis.sentinels', {
        doc: 'Sentinels to ask for the primary, as [host, port] pairs (none = no Sentinel)',
        format: 'nullable-host-port-list',
        default: null,
      }),
      sentinel_name: leaf('redis.sentinel_name', { doc: 'Name of the primary the sentinels monitor', format: 'non-empty-string', default: 'mymaster' }),
      cluster: leaf('redis.cluster', {
        doc: 'Seed nodes of a Redis Cluster, as [host, port] pairs (none = not a cluster); the prefix must then hold a hash tag',
        format: 'nullable-host-port-list',
        default: null,
      }),
    },
    limits: {
      max_message_bytes: leaf('limits.max_message_bytes', { doc: 'Largest WebSocket message and envelope accepted', format: 'positive-int', default: 1048576 }),
    },
    log: {
      level: leaf('log.level', { doc: 'Least severe log line written: debug, info, warn or error', format: [...LOG_LEVELS], default: 'info' }),
      format: leaf('log.format', {
        doc: 'Log lines as json, readable pretty lines, or auto (pretty on a terminal, json otherwise)',
        format: [...LOG_FORMATS],
        default: 'auto',
      }),
    },
  };
}

function listenerSchema(defaultPort: number): Schema {
  return {
    host: leaf('host', { doc: 'Address to listen on', format: 'non-empty-string', default: '127.0.0.1' }),
    port: leaf('port', { doc: 'Port to listen on (0 = any free port)', format: 'port-or-zero', default: defaultPort }),
    advertise_host: leaf('advertise_host', { doc: 'Host name peers use to reach this process (default: host)', format: 'nullable-string', default: null }),
    health: {
      interval_ms: leaf('health.interval_ms', { doc: 'Health check and heartbeat interval', format: 'positive-int', default: 1000 }),
      misses: leaf('health.misses', { doc: 'Missed health checks before a peer is down', format: 'positive-int', default: 3 }),
    },
    metrics: {
      host: leaf('metrics.host', { doc: 'Address the Prometheus /metrics endpoint binds to', format: 'non-empty-string', default: '127.0.0.1' }),
      port: leaf('metrics.port', {
        doc: 'Port of the Prometheus /metrics endpoint (none = no endpoint, 0 = any free port)',
        format: 'nullable-port-or-zero',
        default: null,
      }),
    },
  };
}

function schemaFor(role: Role): Schema {
  const base = baseSchema(role);
  if (role === 'distributor') {
    return {
      ...base,
      ...listenerSchema(5000),
      watch: {
        own_interval_ms: leaf('watch.own_interval_ms', { doc: 'Interval of the own-tasks watch loop', format: 'positive-int', default: 1000 }),
        all_interval_ms: leaf('watch.all_interval_ms', { doc: 'Interval of the all-tasks watch loop', format: 'positive-int', default: 10000 }),
        stale_ms: leaf('watch.stale_ms', { doc: 'Age after which a RUNNING task with a silent worker is stale', format: 'positive-int', default: 5000 }),
      },
      retry: {
        backoff_ms: leaf('retry.backoff_ms', { doc: 'Delay before the first retry of a task that threw', format: 'positive-int', default: 1000 }),
        backoff_max_ms: leaf('retry.backoff_max_ms', { doc: 'Cap on the retry delay', format: 'positive-int', default: 60000 }),
      },
      queue: {
        kind: leaf('queue.kind', {
          doc: 'Order runnable tasks are handed out: priority, fifo, random or weighted',
          format: [...QUEUE_KINDS],
          default: 'priority',
        }),
        weights: leaf('queue.weights', { doc: 'Weight per task name for queue.kind weighted (default 1)', format: 'weight-map', default: {} }),
      },
      retention: {
        terminal_ms: leaf('retention.terminal_ms', {
          doc: 'How long a terminal record is kept after it ended (0 = forever)',
          format: 'nonneg-int',
          default: 604800000,
        }),
      },
      allow: {
        workers: leaf('allow.workers', { doc: 'Worker certificate names (CN/SAN) allowed to connect; empty = any', format: 'string-list', default: [] }),
      },
    };
  }
  if (role === 'worker') {
    return {
      ...base,
      ...listenerSchema(0),
      distributors: leaf('distributors', {
        doc: 'Distributors to connect to, as [host, port] pairs',
        format: 'host-port-list',
        default: [['localhost', 5000]],
      }),
      concurrency: leaf('concurrency', { doc: 'Most tasks run at once', format: 'positive-int', default: 16 }),
      shutdown_grace_ms: leaf('shutdown_grace_ms', { doc: 'Time running tasks get to finish on shutdown', format: 'positive-int', default: 10000 }),
      allow: {
        distributors: leaf('allow.distributors', { doc: 'Distributor certificate names allowed; empty = any', format: 'string-list', default: [] }),
        watchers: leaf('allow.watchers', { doc: 'Watcher certificate names allowed; empty = any', format: 'string-list', default: [] }),
      },
    };
  }
  if (role === 'dashboard') {
    return {
      ...base,
      dashboard: {
        host: leaf('dashboard.host', { doc: 'Address the dashboard page binds to', format: 'non-empty-string', default: '127.0.0.1' }),
        port: leaf('dashboard.port', { doc: 'Port of the dashboard page (0 = any free port)', format: 'port-or-zero', default: 7070 }),
        token: leaf('dashboard.token', {
          doc: 'Token that cancel and retry need (Authorization: Bearer); none = only a client certificate may change state',
          format: 'dashboard-token',
          default: null,
          sensitive: true,
        }),
        tls: leaf('dashboard.tls', {
          doc: 'Serve HTTPS with key/cert and accept client certificates of ca in place of the token',
          format: Boolean,
          default: false,
        }),
      },
    };
  }
  return base;
}

/**
 * Finds `--config FILE` (or `--config=FILE`) anywhere in argv, else `TASKMESH_CONFIG`. Lenient
 * (other options are ignored), for programs with their own flags; the bins parse strictly.
 */
export function configPathFromArgs(argv: readonly string[], environment: NodeJS.ProcessEnv = process.env): string | undefined {
  const { values } = parseArgs({ args: [...argv], options: { config: { type: 'string' } }, strict: false, allowPositionals: true });
  // Not strict: `--config` with no value comes back as `true`.
  return typeof values.config === 'string' ? values.config : environment.TASKMESH_CONFIG || undefined;
}

function readPem(key: string, path: string, baseDir: string): string {
  const full = resolve(baseDir, path);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!text.includes('-----BEGIN ')) throw new ConfigError(`${key}: ${full} is not a PEM file`);
  return text;
}

/** Builds a config for a role from a file (or none) plus overrides, all validated. */
export function loadConfig<R extends Role>(role: R, source?: string | Record<string, unknown>, overrides: Record<string, unknown> = {}): ConfigFor<R> {
  const conf = convict(schemaFor(role) as convict.Schema<Record<string, unknown>>, { env: process.env, args: [] });
  let baseDir = process.cwd();
  if (typeof source === 'string') {
    const full = resolve(source);
    let text: string;
    try {
      text = readFileSync(full, 'utf8');
    } catch (err) {
      throw new ConfigError(`config file ${full}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`config file ${full}: not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config file ${full}: must hold a JSON object`);
    // convict re-applies TASKMESH_* variables after load(), so the environment wins over the file.
    conf.load(parsed as Record<string, unknown>);
    baseDir = resolve(full, '..');
  } else if (source) {
    conf.load(source);
  }
  // Explicit overrides (command-line flags) win over the environment: set(), unlike load(),
  // does not re-apply TASKMESH_* variables.
  for (const [path, value] of flatten(overrides)) conf.set(path, value);
  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    const first = String((err as Error).message).split('\n')[0] ?? 'invalid configuration';
    throw new ConfigError(
      first.replace(/^configuration param '([^']+)' not declared in the schema$/, '$1: unknown key (not a $ROLE setting)').replace('$ROLE', role),
    );
  }
  return resolveConfig(role, conf.getProperties() as Record<string, unknown>, baseDir) as unknown as ConfigFor<R>;
}

function flatten(o: Record<string, unknown>, prefix = ''): Array<[string, unknown]> {
  return Object.entries(o).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? flatten(v as Record<string, unknown>, `${prefix}${k}.`)
      : [[`${prefix}${k}`, v] as [string, unknown]],
  );
}

function resolveConfig(role: Role, p: Record<string, unknown>, baseDir: string): BaseConfig & Record<string, unknown> {
  const get = <T>(k: string): T => p[k] as T;
  const keyPath = get<string | null>('key');
  const certPath = get<string | null>('cert');
  const caPath = get<string | null>('ca');
  let tls: TlsMaterial | null = null;
  if (keyPath && certPath && caPath) {
    tls = { key: readPem('key', keyPath, baseDir), cert: readPem('cert', certPath, baseDir), ca: readPem('ca', caPath, baseDir) };
  } else if (role !== 'cli') {
    throw new ConfigError('key, cert, ca: required');
  }
  const out: BaseConfig & Record<string, unknown> = { ...p, role, tls } as unknown as BaseConfig & Record<string, unknown>;
  delete out.key;
  delete out.cert;
  delete out.ca;
  if ('host' in p) out.advertise_host = (p.advertise_host as string | null) ?? (p.host as string);
  const target = redisTarget(out.redis); // a bad redis.url is a config error now, not a crash at start
  checkTopology(out.redis);
  // From here on no log line of this process can show these, whoever logs them and however.
  registerSecret(out.share_key);
  registerSecret(target.password);
  if (tls) registerSecret(tls.key);
  registerSecret((out as { dashboard?: { token?: string | null } }).dashboard?.token);
  // The level is one per process: the config loaded last (the bin's, with its --log-level
  // override) sets it for every logger, including those made before it was read.
  const log = out.log!;
  setLogLevel(log.level);
  setLogFormat(log.format);
  return out;
}

/**
 * The rules convict cannot express key by key: one topology at a time, and on a cluster a prefix
 * whose hash tag puts every key of the mesh in one slot (each script's keys must share a slot, or
 * Redis answers CROSSSLOT), and the one database a cluster has.
 */
function checkTopology(r: RedisConfig): void {
  if (r.cluster && r.sentinels) throw new ConfigError('redis.cluster: cannot be used together with redis.sentinels (choose one topology)');
  const topology = r.cluster ? 'redis.cluster' : r.sentinels ? 'redis.sentinels' : null;
  if (!topology) return;
  for (const [k, v] of [
    ['redis.host', r.host],
    ['redis.port', r.port],
  ] as const) {
    if (v !== null) throw new ConfigError(`${k}: not used with ${topology} (${r.cluster ? 'the seed nodes' : 'the sentinels'} name the servers)`);
  }
  if (!r.cluster) return;
  if (hashTag(r.prefix) === null)
    throw new ConfigError(`redis.prefix: "${r.prefix}" holds no hash tag; with redis.cluster use one such as "{tm}:" so every key of the mesh is in one slot`);
  if (redisTarget(r).db !== 0) throw new ConfigError('redis.db: a Redis Cluster has only database 0 (set no other in redis.db or in the redis.url path)');
}

/** The part of a key Redis Cluster hashes: the text between the first `{` and the next `}`, if not empty. */
export function hashTag(prefix: string): string | null {
  const open = prefix.indexOf('{');
  if (open === -1) return null;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : null;
}

/** ioredis connection options derived from `redis.*`. */
export function redisTarget(r: RedisConfig): { host: string; port: number; db: number; password?: string; username?: string; tls: boolean } {
  let u: URL;
  try {
    u = new URL(r.url);
  } catch {
    throw new ConfigError(`redis.url: not a valid URL: ${r.url.replace(/\/\/[^@/]*@/, '//***@')}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new ConfigError(`redis.url: unsupported scheme ${u.protocol}`);
  const db = r.db ?? (u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0);
  const password = r.password ?? (u.password ? decodeURIComponent(u.password) : undefined);
  return {
    host: r.host ?? (u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1'),
    port: r.port ?? (u.port ? Number(u.port) : 6379),
    db,
    ...(password !== undefined ? { password } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    tls: u.protocol === 'rediss:',
  };
}
