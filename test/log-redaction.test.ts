/**
 * Logs are JSON lines that carry pid, role and the task fields, and never a secret: a distributor
 * and a worker run at debug level with a known share_key against a throwaway redis-server that
 * requires a password (given in the Redis URL). Tasks end, fail with the secret in their error,
 * and get cancelled; then every line both wrote is checked. `log.level` itself is checked too:
 * the key, its environment variable, an override (what `--log-level` passes) and a bad value.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ConfigError, TaskClient, loadConfig } from '@taskmesh/common';
import { createLogger, logLevel, setLogLevel } from '@taskmesh/common/internal';
import {
  certFiles,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  logLines,
  noteSecret,
  RedisServer,
  runBin,
  spawnBin,
  tmpDir,
  workerConfig,
  writeConfig,
  type LogLine,
  type Proc,
} from './helpers';

/** Every non-empty stderr line of a bin, parsed: each must be one JSON object. */
function stderrLines(p: Proc): LogLine[] {
  return p.stderr
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        throw new Error(`${p.name} wrote a stderr line that is not JSON: ${l}`);
      }
    });
}

/** The first and last full base64 lines of a PEM private key. */
function keyBody(path: string): string[] {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length >= 40 && !l.startsWith('-----'));
  return [lines[0]!, lines[lines.length - 2]!];
}

/** What the loggers wrote to stderr while `fn` ran (the process's own stderr is spared). */
function stderrOf(fn: () => void): string {
  const captured: string[] = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array) => {
    captured.push(String(chunk));
    return true;
  }) as typeof process.stderr.write);
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return captured.join('');
}

describe('log redaction', () => {
  const shareKey = `redaction-share-key-${randomBytes(6).toString('hex')}`;
  const password = `redaction-pw-${randomBytes(6).toString('hex')}`;
  noteSecret(shareKey);
  noteSecret(password);
  const dir = tmpDir('redact');
  const prefix = 'tmtest:redact:';
  let server: RedisServer;
  let d: Proc;
  let w: Proc;
  let client: TaskClient;

  beforeAll(async () => {
    server = await RedisServer.start({ password });
    expect(server.url).toContain(`:${password}@`);
    const port = await freePort();
    const debug = { TASKMESH_LOG_LEVEL: 'debug' };
    d = spawnBin(
      'distributor',
      ['--config', writeConfig(dir, 'd', distributorConfig(prefix, port, { id: 'redact-d', share_key: shareKey }, server.url))],
      debug,
      'distributor',
    );
    w = spawnBin(
      'worker',
      ['--config', writeConfig(dir, 'w', workerConfig(prefix, [port], { id: 'redact-w', share_key: shareKey }, server.url)), '--tasks', FIXTURE_TASKS],
      debug,
      'worker',
    );
    await d.waitForLog('worker connected', { worker: 'redact-w' });
    // In-process too, a loaded config's share_key and password are secrets (the test below relies on it).
    client = new TaskClient(loadConfig('cli', { share_key: shareKey, redis: { url: server.url, prefix } }));
  });

  afterAll(async () => {
    await Promise.all([d, w].filter(Boolean).map((p) => p.stop()));
    await client?.close();
    await server?.stopProcess();
  });

  test('lines are JSON with pid, role and task fields; no share_key, password or key body in any', async () => {
    const ok = await client.submit('echo', { hello: 'world' });
    // A task whose error holds both secrets: the worker's FAILED line must not repeat them.
    const failed = await client.submit('fail', { message: `leaked ${shareKey} and ${password}` }, { max_attempts: 1 });
    const long = await client.submit('sleep', { ms: 30000 });
    expect((await client.wait(ok, { timeoutMs: 15000 })).state).toBe('END');
    expect((await client.wait(failed, { timeoutMs: 15000 })).state).toBe('FAILED');
    await w.waitForLog('task started', { task: long, attempt: 1 });
    await client.cancel(long);
    expect((await client.wait(long, { timeoutMs: 15000 })).state).toBe('CANCELLED');
    await w.waitForLog('task FAILED: it threw in max_attempts runs', { task: failed, attempt: 1 });
    await w.waitForLog('aborting task', { task: long, attempt: 1 });
    await Promise.all([d.stop(), w.stop()]);

    const dl = stderrLines(d);
    const wl = stderrLines(w);
    for (const [p, lines, role] of [
      [d, dl, 'distributor'],
      [w, wl, 'worker'],
    ] as const) {
      expect(lines.length).toBeGreaterThan(3);
      for (const l of lines) {
        expect({ pid: l.pid, role: l.role, level: typeof l.level, msg: typeof l.msg, time: typeof l.time }).toEqual({
          pid: p.pid,
          role,
          level: 'string',
          msg: 'string',
          time: 'string',
        });
      }
      // The bin's own lines carry the configured id; the shutdown line of runMain is the process's.
      expect(lines.filter((l) => l.msg !== 'shutting down').every((l) => l.id === `redact-${role[0]}`)).toBe(true);
      expect(lines.some((l) => l.level === 'debug')).toBe(true);
    }
    // Task lines carry task and attempt, on both sides.
    expect(dl.find((l) => l.msg === 'task assigned' && l.task === ok)).toMatchObject({ attempt: 1, worker: 'redact-w', name: 'echo' });
    expect(wl.find((l) => l.msg === 'task ended' && l.task === ok)).toMatchObject({ attempt: 1, state: 'END' });
    expect(wl.find((l) => l.msg === 'task started' && l.task === long)).toMatchObject({ attempt: 1, distributor: 'redact-d' });
    // Connection lines carry the peer.
    expect(wl.find((l) => l.msg === 'connected to distributor')).toMatchObject({ distributor: 'redact-d' });
    const failedLine = wl.find((l) => l.msg === 'task FAILED: it threw in max_attempts runs' && l.task === failed)!;
    expect(failedLine.error).toBe('leaked [redacted] and [redacted]');

    const all = `${d.output}\n${w.output}`;
    for (const secret of [shareKey, password, ...keyBody(certFiles('distributor').key), ...keyBody(certFiles('worker').key)]) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/PRIVATE KEY/);
  });

  test('an in-process logger redacts secret fields, config objects, URL passwords and PEM blocks', () => {
    const text = stderrOf(() => {
      const pem = readFileSync(certFiles('worker').key, 'utf8');
      const log = createLogger('worker', { id: 'redact-inproc' });
      log.warn('careless call', {
        task: 't-1',
        attempt: 2,
        share_key: shareKey,
        config: { share_key: shareKey, redis: { url: server.url, password }, tls: { key: pem } },
        url: server.url,
        reason: `connect failed for redis://user:${password}@10.0.0.1:6379`,
        pem,
      });
      log.child({ peer: 'p-1' }).error(`message naming ${shareKey}`);
    });
    const lines = logLines(text);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      role: 'worker',
      id: 'redact-inproc',
      pid: process.pid,
      task: 't-1',
      attempt: 2,
      share_key: '[redacted]',
      pem: '[redacted]\n',
    });
    expect(lines[0]!.url).toBe(`redis://:[redacted]@127.0.0.1:${server.port}`);
    expect(lines[1]).toMatchObject({ peer: 'p-1', msg: 'message naming [redacted]', level: 'error' });
    for (const secret of [shareKey, password, ...keyBody(certFiles('worker').key)]) expect(text).not.toContain(secret);
  });

  test('deep fields, a password holding @, and a field whose getter throws', () => {
    const text = stderrOf(() => {
      const log = createLogger('worker', { id: 'redact-deep' });
      log.warn('deep', { a: { b: { c: { share_key: 'deep-share-key', d: { e: `redis://u:${password}@h` } } } } });
      log.warn(`url redis://user:p@ss-${password}@host:6379/0`);
      log.warn('unloggable', {
        get bad(): string {
          throw new Error('getter failed');
        },
      });
    });
    const lines = logLines(text);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ a: { b: { c: { share_key: '[redacted]', d: '[object]' } } } });
    expect(lines[1]!.msg).toBe('url redis://user:[redacted]@host:6379/0');
    expect(lines[2]).toMatchObject({ msg: 'unloggable', unloggable_fields: 'getter failed' });
    for (const secret of ['deep-share-key', password, 'ss-']) expect(text).not.toContain(secret);
  });
});

describe('log.level', () => {
  const dir = tmpDir('loglevel');
  const base = { redis: { url: 'redis://127.0.0.1:6379', prefix: 'tmtest:loglevel:' } };
  const saved = logLevel();
  afterAll(() => setLogLevel(saved));

  test('loading a config applies log.level to loggers made before it; an override (--log-level) wins', () => {
    const text = stderrOf(() => {
      const early = createLogger('cli');
      expect(loadConfig('cli', { ...base, log: { level: 'warn' } }).log.level).toBe('warn');
      early.info('hidden at warn');
      early.child({ task: 'x' }).warn('shown at warn');
      expect(loadConfig('cli', { ...base, log: { level: 'warn' } }, { log: { level: 'debug' } }).log.level).toBe('debug');
      early.debug('shown at debug');
      expect(loadConfig('cli', base).log.level).toBe('info');
      early.debug('hidden at info');
    });
    expect(logLines(text).map((l) => l.msg)).toEqual(['shown at warn', 'shown at debug']);
  });

  test('a bad --log-level override is a config error naming log.level, and changes nothing', () => {
    setLogLevel('warn');
    expect(() => loadConfig('cli', base, { log: { level: 'chatty' } })).toThrow(ConfigError);
    expect(() => loadConfig('cli', base, { log: { level: 'chatty' } })).toThrow(/^log\.level: /);
    expect(logLevel()).toBe('warn');
  });

  test('TASKMESH_LOG_LEVEL sets it; a bad value in the file or the environment exits 2 naming log.level', async () => {
    const cfg = writeConfig(dir, 'c', base);
    const viaEnv = await runBin('taskmesh', ['ls', '--config', cfg], { TASKMESH_LOG_LEVEL: 'verbose' });
    const viaFile = await runBin('taskmesh', ['ls', '--config', writeConfig(dir, 'bad', { ...base, log: { level: 'loud' } })]);
    for (const r of [viaEnv, viaFile]) {
      const lines = r.stderr.split('\n').filter(Boolean);
      expect({ code: r.code, lines: lines.length, stdout: r.stdout }).toEqual({ code: 2, lines: 1, stdout: '' });
      expect(lines[0]).toMatch(/log\.level/);
    }
    const env = { ...process.env };
    try {
      process.env.TASKMESH_LOG_LEVEL = 'error';
      expect(loadConfig('cli', base).log.level).toBe('error');
      expect(logLevel()).toBe('error');
    } finally {
      process.env = env;
    }
  });
});
