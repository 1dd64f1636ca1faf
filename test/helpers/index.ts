/**
 * Test harness: a random key prefix per test, configs written to temp files, the real bins as
 * child processes, throwaway redis-servers, and polling with a deadline (never a fixed sleep).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdtempSync, openSync, writeFileSync, writeSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const ROOT = join(__dirname, '..', '..');
export const CERTS = join(ROOT, '.tmp', 'test-certs');
export const FIXTURE_TASKS = join(ROOT, 'test', 'fixtures', 'tasks.js');
export const REDIS_URL = process.env.TASKMESH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const BINS = {
  distributor: join(ROOT, 'packages', 'distributor', 'bin', 'taskmesh-distributor.js'),
  worker: join(ROOT, 'packages', 'worker', 'bin', 'taskmesh-worker.js'),
  watch: join(ROOT, 'packages', 'watcher', 'bin', 'taskmesh-watch.js'),
  taskmesh: join(ROOT, 'packages', 'common', 'bin', 'taskmesh.js'),
} as const;

export function randomPrefix(label = 't'): string {
  return `tmtest:${label}:${randomBytes(4).toString('hex')}:`;
}

export function tmpDir(label = 'tm'): string {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  return mkdtempSync(join(tmpdir(), `${label}-`));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 15000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Deletes every key under a prefix (only ours: never FLUSHDB on the shared Redis). */
export async function cleanPrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const r = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

export interface RoleFiles {
  key: string;
  cert: string;
  ca: string;
}

export function certFiles(name: 'distributor' | 'worker' | 'watcher' | 'client', set: 'good' | 'other' | 'expired' = 'good'): RoleFiles {
  const dir = join(CERTS, set);
  const caDir = set === 'expired' ? join(CERTS, 'good') : dir;
  return { key: join(dir, `${name}-key.pem`), cert: join(dir, `${name}.pem`), ca: join(caDir, 'ca.pem') };
}

export const SHARE_KEY = 'test-share-key';

/** Fast timings so fault tests finish in seconds. */
export const FAST = {
  health: { interval_ms: 200, misses: 3 },
  watch: { own_interval_ms: 200, all_interval_ms: 1000, stale_ms: 1500 },
  retry: { backoff_ms: 100, backoff_max_ms: 1000 },
};

export function distributorConfig(prefix: string, port: number, extra: Record<string, unknown> = {}, redisUrl = REDIS_URL): Record<string, unknown> {
  return {
    id: `d-${port}`,
    share_key: SHARE_KEY,
    ...certFiles('distributor'),
    host: '127.0.0.1',
    port,
    health: FAST.health,
    watch: FAST.watch,
    retry: FAST.retry,
    ...extra,
    redis: { url: redisUrl, prefix, ...(extra.redis as Record<string, unknown> | undefined) },
  };
}

export function workerConfig(prefix: string, distributorPorts: number[], extra: Record<string, unknown> = {}, redisUrl = REDIS_URL): Record<string, unknown> {
  return {
    share_key: SHARE_KEY,
    ...certFiles('worker'),
    host: '127.0.0.1',
    port: 0,
    distributors: distributorPorts.map((p) => ['127.0.0.1', p]),
    concurrency: 16,
    health: FAST.health,
    shutdown_grace_ms: 2000,
    ...extra,
    redis: { url: redisUrl, prefix, ...(extra.redis as Record<string, unknown> | undefined) },
  };
}

export function clientConfig(prefix: string, redisUrl = REDIS_URL): Record<string, unknown> {
  return { redis: { url: redisUrl, prefix } };
}

export function writeConfig(dir: string, name: string, config: Record<string, unknown>): string {
  noteConfigSecrets(config);
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** A bin running as a child process, with its output kept for assertions and failure reports. */
export class Proc {
  output = '';
  /** Its stderr alone: where its log lines go. */
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitCode: number | null | undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = captureFile(name, child);
    child.stdout?.on('data', (d: Buffer) => {
      this.output += d.toString();
      keep(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.output += d.toString();
      this.stderr += d.toString();
      keep(d);
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code;
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  async stop(timeoutMs = 8000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }

  waitForOutput(re: RegExp, timeoutMs = 15000): Promise<RegExpMatchArray> {
    return waitFor(`${this.name} output ${re}`, () => this.output.match(re), timeoutMs);
  }

  /** Its JSON log lines so far (stdout lines and other text are left out). */
  get logs(): LogLine[] {
    return logLines(this.output);
  }

  /** The first log line with this message and these fields (see `findLogs`), once it is written. */
  waitForLog(msg: string | RegExp, fields: LogFieldMatch = {}, timeoutMs = 15000): Promise<LogLine> {
    return waitFor(
      `${this.name} log ${String(msg)} ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof RegExp ? String(v) : v))}`,
      () => findLogs(this.output, msg, fields)[0],
      timeoutMs,
    );
  }
}

/** The environment for bins: without any TASKMESH_* of the shell that runs jest. */
function binEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TASKMESH_')));
}

export function spawnBin(bin: keyof typeof BINS, args: string[], env: Record<string, string> = {}, name: string = bin): Proc {
  const child = spawn(process.execPath, [BINS[bin], ...args], {
    cwd: ROOT,
    env: { ...binEnv(), TASKMESH_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Proc(name, child);
}

/** Runs a bin to completion. */
export async function runBin(
  bin: keyof typeof BINS,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BINS[bin], ...args], { cwd: ROOT, env: { ...binEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const keep = captureFile(bin, child);
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    keep(d);
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    keep(d);
  });
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(t);
  return { code, stdout, stderr };
}

/** A throwaway redis-server on a free loopback port, for tests that restart or kill Redis. */
export class RedisServer {
  proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly dir: string,
    readonly aof: boolean,
    readonly password?: string,
  ) {}

  /** `password`: started with `requirepass`, and `url` carries it. */
  static async start(opts: { aof?: boolean; password?: string } = {}): Promise<RedisServer> {
    const s = new RedisServer(await freePort(), tmpDir('redis'), opts.aof ?? false, opts.password);
    try {
      await s.startProcess();
    } catch (err) {
      await s.stopProcess();
      throw err;
    }
    return s;
  }

  get url(): string {
    return `redis://${this.password ? `:${encodeURIComponent(this.password)}@` : ''}127.0.0.1:${this.port}`;
  }

  async startProcess(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        this.aof ? 'yes' : 'no',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        ...(this.password ? ['--requirepass', this.password] : []),
      ],
      { stdio: 'ignore' },
    );
    await waitFor(`redis-server on ${this.port}`, async () => {
      const r = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    });
  }

  async stopProcess(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }

  async restart(): Promise<void> {
    await this.stopProcess('SIGTERM');
    await this.startProcess();
  }
}

export function redis(url = REDIS_URL): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: 3 });
  r.on('error', () => undefined);
  return r;
}

// ---- log capture and log matchers ------------------------------------------------------------

/**
 * The folder of this run's captured output (made by global-setup.js): every child a helper
 * spawns appends its stdout and stderr there, the jest workers their own stderr
 * (capture-stderr.js), and global-teardown.js greps all of it for the secrets noted below.
 */
export const LOG_DIR: string | undefined = process.env.TASKMESH_TEST_LOG_DIR || undefined;

/**
 * A sink for one child's output in LOG_DIR (nothing when jest runs without global-setup). One
 * file descriptor per child, closed with its streams: tests that spawn hundreds of children feel
 * an open and close per chunk.
 */
function captureFile(name: string, child: ChildProcess): (d: Buffer) => void {
  if (!LOG_DIR) return () => undefined;
  const fd = openSync(join(LOG_DIR, `${name.replace(/[^\w.-]+/g, '_').slice(0, 60)}-${child.pid ?? 'nopid'}-${randomBytes(3).toString('hex')}.log`), 'a');
  let open = true;
  child.once('close', () => {
    open = false;
    closeSync(fd);
  });
  return (d) => {
    if (open) writeSync(fd, d);
  };
}

/**
 * Notes a value no log line may hold: global-teardown.js fails the run if any captured line
 * does. Values shorter than 6 characters are not noted (a share_key of "k" would match prose).
 */
export function noteSecret(value: unknown): void {
  if (!LOG_DIR || typeof value !== 'string' || value.length < 6) return;
  appendFileSync(join(LOG_DIR, 'secrets.txt'), `${JSON.stringify(value)}\n`);
}

/** The secrets of a config a test writes: share_key, a Redis password (own key or in the URL), a token. */
function noteConfigSecrets(config: Record<string, unknown>): void {
  noteSecret(config.share_key);
  noteSecret(config.token);
  const r = config.redis as Record<string, unknown> | undefined;
  if (r && typeof r === 'object') {
    noteSecret(r.password);
    if (typeof r.url === 'string') {
      try {
        noteSecret(decodeURIComponent(new URL(r.url).password));
      } catch {
        // not a URL: the config test that writes it expects a config error, not a connection
      }
    }
  }
  const d = config.dashboard as Record<string, unknown> | undefined;
  if (d && typeof d === 'object') noteSecret(d.token);
}

/** One JSON log line of a taskmesh process (docs/operations.md, "Logs"). */
export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  time: string;
  pid: number;
  role: string;
  msg: string;
  [field: string]: unknown;
}

/** What a field must be: a value (compared with ===), or a pattern its string form must match. */
export type LogFieldMatch = Record<string, string | number | boolean | null | RegExp>;

/** The log lines in a process's output, in order; lines that are not log lines (stdout, events) are skipped. */
export function logLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      continue;
    }
    if (
      o &&
      typeof o === 'object' &&
      typeof (o as LogLine).msg === 'string' &&
      typeof (o as LogLine).level === 'string' &&
      typeof (o as LogLine).pid === 'number'
    )
      out.push(o as LogLine);
  }
  return out;
}

function matches(l: LogLine, msg: string | RegExp, fields: LogFieldMatch): boolean {
  if (typeof msg === 'string' ? l.msg !== msg : !msg.test(l.msg)) return false;
  for (const [k, want] of Object.entries(fields)) {
    const got = l[k];
    if (want instanceof RegExp ? got === undefined || !want.test(typeof got === 'string' ? got : JSON.stringify(got)) : got !== want) return false;
  }
  return true;
}

/** The log lines whose message is `msg` (exactly, or matching the pattern) and whose fields match `fields`. */
export function findLogs(text: string, msg: string | RegExp, fields: LogFieldMatch = {}): LogLine[] {
  return logLines(text).filter((l) => matches(l, msg, fields));
}

/** Whether `text` holds a log line with this message and these fields. */
export function hasLog(text: string, msg: string | RegExp, fields: LogFieldMatch = {}): boolean {
  return findLogs(text, msg, fields).length > 0;
}

/** How many log lines with this message and these fields `text` holds. */
export function countLogs(text: string, msg: string | RegExp, fields: LogFieldMatch = {}): number {
  return findLogs(text, msg, fields).length;
}

// The helper configs' share_key is a secret no log line may hold.
noteSecret(SHARE_KEY);
