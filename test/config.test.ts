/**
 * SPEC section 7: unknown keys, keys of another role, missing or unreadable files (config or PEM)
 * and bad values stop every bin with exit code 2 and exactly one line on stderr that names the key
 * or file, without a stack trace. TASKMESH_* environment variables override the file (and a bad
 * one is refused the same way); TASKMESH_CONFIG names the file when --config is absent.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TaskClient, loadConfig } from '@taskmesh/common';
import {
  certFiles,
  cleanPrefix,
  clientConfig,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  redis,
  runBin,
  spawnBin,
  tmpDir,
  workerConfig,
  writeConfig,
  type Proc,
} from './helpers';

type Result = Awaited<ReturnType<typeof runBin>>;

/** Exit 2, one stderr line naming what is wrong, no stack trace, nothing on stdout. */
function expectConfigError(r: Result, ...mentions: (string | RegExp)[]): void {
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  const report = `exit ${r.code}\nstderr:\n${r.stderr}\nstdout:\n${r.stdout}`;
  expect({ code: r.code, lines: lines.length, report }).toEqual({ code: 2, lines: 1, report });
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toMatch(/node:internal|\.js:\d+:\d+/);
  for (const m of mentions) expect(lines[0]).toMatch(m);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('configuration errors and overrides', () => {
  const prefix = randomPrefix('cfg');
  const emptyPrefix = randomPrefix('cfgempty');
  const dir = tmpDir('cfg');
  const procs: Proc[] = [];
  let port: number;

  const dcfg = (extra: Record<string, unknown> = {}) => distributorConfig(prefix, port, extra);
  const wcfg = (extra: Record<string, unknown> = {}) => workerConfig(prefix, [port], extra);
  const dist = (file: string, env: Record<string, string> = {}) => runBin('distributor', ['--config', file], env, 15000);
  const work = (file: string, env: Record<string, string> = {}, extra: string[] = []) =>
    runBin('worker', ['--config', file, '--tasks', FIXTURE_TASKS, ...extra], env, 15000);
  const cli = (args: string[], env: Record<string, string> = {}) => runBin('taskmesh', args, env, 15000);

  beforeAll(async () => {
    port = await freePort();
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await cleanPrefix(prefix);
    await cleanPrefix(emptyPrefix);
  });

  describe('taskmesh-distributor', () => {
    test('an unknown top-level key', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-unknown', dcfg({ bogus_key: 1 }))), /bogus_key/, /unknown/i);
    });

    test('an unknown nested key', async () => {
      expectConfigError(
        await dist(writeConfig(dir, 'd-unknown-nested', dcfg({ health: { interval_ms: 200, misses: 3, bogus_nested: 1 } }))),
        /health\.bogus_nested/,
      );
    });

    test('a key of another role (concurrency belongs to workers)', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-concurrency', dcfg({ concurrency: 4 }))), /concurrency/);
    });

    test('a key of another role (distributors belongs to workers)', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-distributors', dcfg({ distributors: [['127.0.0.1', 5000]] }))), /distributors/);
    });

    test('a missing config file', async () => {
      const missing = join(dir, 'no-such-config.json');
      expectConfigError(await dist(missing), new RegExp(esc(missing)));
    });

    test('queue.kind, queue.weights and retention.terminal_ms bad values name the key', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-qkind', dcfg({ queue: { kind: 'lifo' } }))), /queue\.kind/);
      expectConfigError(await dist(writeConfig(dir, 'd-qweights', dcfg({ queue: { kind: 'weighted', weights: { resize: 0 } } }))), /queue\.weights/, /resize/);
      expectConfigError(await dist(writeConfig(dir, 'd-retention', dcfg({ retention: { terminal_ms: -1 } }))), /retention\.terminal_ms/);
      expectConfigError(await dist(writeConfig(dir, 'd-qok', dcfg()), { TASKMESH_QUEUE_WEIGHTS: '{"a": "heavy"}' }), /queue\.weights/);
    });

    test('a config file that is not JSON', async () => {
      const file = join(dir, 'd-notjson.json');
      writeFileSync(file, '{ "share_key": "k", oops');
      expectConfigError(await dist(file), new RegExp(esc(file)));
    });

    test('TASKMESH_CONFIG naming a missing file', async () => {
      const missing = join(dir, 'env-named-missing.json');
      const r = await runBin('distributor', [], { TASKMESH_CONFIG: missing }, 15000);
      expectConfigError(r, new RegExp(esc(missing)));
    });

    test('no config at all: share_key is required', async () => {
      const r = await runBin('distributor', [], {}, 15000);
      expectConfigError(r, /share_key/);
    });

    test('a missing PEM file (key)', async () => {
      const missing = join(dir, 'no-such-key.pem');
      expectConfigError(await dist(writeConfig(dir, 'd-nokey', dcfg({ key: missing }))), /\bkey\b/, new RegExp(esc(missing)));
    });

    test('a missing PEM file (ca)', async () => {
      const missing = join(dir, 'no-such-ca.pem');
      expectConfigError(await dist(writeConfig(dir, 'd-noca', dcfg({ ca: missing }))), /\bca\b/, new RegExp(esc(missing)));
    });

    test('a PEM path that is a folder (unreadable)', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-certdir', dcfg({ cert: dir }))), /\bcert\b/, new RegExp(esc(dir)));
    });

    test('a PEM path pointing at a non-PEM file', async () => {
      const notPem = join(dir, 'not-a-cert.pem');
      writeFileSync(notPem, 'just some text, no PEM armour\n');
      expectConfigError(await dist(writeConfig(dir, 'd-notpem', dcfg({ cert: notPem }))), /\bcert\b/, new RegExp(esc(notPem)), /PEM/);
    });

    test('a bad value: health.interval_ms -5', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-neg', dcfg({ health: { interval_ms: -5, misses: 3 } }))), /health\.interval_ms/);
    });

    test('a bad value: port "abc"', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-port', dcfg({ port: 'abc' }))), /\bport\b/);
    });

    test('a bad value: port 70000', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-bigport', dcfg({ port: 70000 }))), /\bport\b/);
    });

    test('a bad value: share_key empty', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-share', dcfg({ share_key: '' }))), /share_key/);
    });

    test('errors about secrets never print the secret', async () => {
      const share = await dist(writeConfig(dir, 'd-share-num', dcfg({ share_key: 987654321 })));
      expectConfigError(share, /share_key/);
      expect(share.stderr).not.toContain('987654321');
      const pw = await dist(writeConfig(dir, 'd-pw-num', dcfg({ redis: { password: 24681357 } })));
      expectConfigError(pw, /redis\.password/);
      expect(pw.stderr).not.toContain('24681357');
      const url = await dist(writeConfig(dir, 'd-url', dcfg({ redis: { url: 'redis://:sekrit99@[bad' } })));
      expectConfigError(url, /redis\.url/);
      expect(url.stderr).not.toContain('sekrit99');
    });

    test('an env override with a bad value: TASKMESH_HEALTH_INTERVAL_MS=abc', async () => {
      const file = writeConfig(dir, 'd-good', dcfg());
      expectConfigError(await dist(file, { TASKMESH_HEALTH_INTERVAL_MS: 'abc' }), /health\.interval_ms/);
    });

    test('an env override with a bad value: TASKMESH_WATCH_STALE_MS=0', async () => {
      const file = writeConfig(dir, 'd-good2', dcfg());
      expectConfigError(await dist(file, { TASKMESH_WATCH_STALE_MS: '0' }), /watch\.stale_ms/);
    });

    // Regression: coerce() used to JSON.parse this outside the ConfigError handling (exit 1 + stack).
    test('an env override with a bad value: TASKMESH_ALLOW_WORKERS=[bad', async () => {
      expectConfigError(await dist(writeConfig(dir, 'd-good3', dcfg()), { TASKMESH_ALLOW_WORKERS: '[bad' }), /allow\.workers/);
    });

    test('env overrides win over the file (TASKMESH_PORT, TASKMESH_ID, TASKMESH_REDIS_PREFIX)', async () => {
      const envPort = await freePort();
      const envPrefix = emptyPrefix;
      const file = writeConfig(dir, 'd-env', dcfg({ id: 'cfg-file-id' }));
      const d = spawnBin(
        'distributor',
        ['--config', file],
        { TASKMESH_PORT: String(envPort), TASKMESH_ID: 'cfg-env-id', TASKMESH_REDIS_PREFIX: envPrefix },
        'd-env',
      );
      procs.push(d);
      expect(await d.waitForLog('started')).toMatchObject({ host: '127.0.0.1', port: envPort, prefix: envPrefix });
      const r = redis();
      try {
        expect(await r.hget(`${envPrefix}distributor:cfg-env-id`, 'port')).toBe(String(envPort));
        expect(await r.exists(`${prefix}distributor:cfg-file-id`)).toBe(0);
      } finally {
        r.disconnect();
      }
      await d.stop();
      expect(d.exitCode).toBe(0);
    });
  });

  describe('taskmesh-worker', () => {
    test('a key of another role (watch belongs to distributors)', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-watch', wcfg({ watch: { own_interval_ms: 200, all_interval_ms: 1000, stale_ms: 1500 } }))), /watch/);
    });

    test('a key of another role (retry belongs to distributors)', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-retry', wcfg({ retry: { backoff_ms: 10, backoff_max_ms: 100 } }))), /retry/);
    });

    test('an unknown key', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-unknown', wcfg({ concurency: 3 }))), /concurency/);
    });

    test('a missing config file', async () => {
      const missing = join(dir, 'no-such-worker.json');
      expectConfigError(await work(missing), new RegExp(esc(missing)));
    });

    test('a missing PEM file (cert)', async () => {
      const missing = join(dir, 'no-such-cert.pem');
      expectConfigError(await work(writeConfig(dir, 'w-nocert', wcfg({ cert: missing }))), /\bcert\b/, new RegExp(esc(missing)));
    });

    test('a PEM path pointing at a non-PEM file (the tasks module)', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-notpem', wcfg({ key: FIXTURE_TASKS }))), /\bkey\b/, new RegExp(esc(FIXTURE_TASKS)), /PEM/);
    });

    test('a bad value: concurrency 0', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-conc0', wcfg({ concurrency: 0 }))), /concurrency/);
    });

    test('a bad value: distributors with a non-numeric port', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-dists-port', wcfg({ distributors: [['localhost', 'x']] }))), /distributors/);
    });

    // Regression: coerce() used to JSON.parse this outside the ConfigError handling (exit 1 + stack).
    test('a bad value: distributors as a "host:port" string', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-dists', wcfg({ distributors: 'localhost:5000' }))), /distributors/);
    });

    test('an env override with a bad value: TASKMESH_DISTRIBUTORS=localhost:5000', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-good4', wcfg()), { TASKMESH_DISTRIBUTORS: 'localhost:5000' }), /distributors/);
    });

    test('a bad value: health.interval_ms -5', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-neg', wcfg({ health: { interval_ms: -5, misses: 3 } }))), /health\.interval_ms/);
    });

    test('an env override with a bad value: TASKMESH_HEALTH_INTERVAL_MS=abc', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-good', wcfg()), { TASKMESH_HEALTH_INTERVAL_MS: 'abc' }), /health\.interval_ms/);
    });

    test('an env override with a bad value: TASKMESH_CONCURRENCY=-1', async () => {
      expectConfigError(await work(writeConfig(dir, 'w-good2', wcfg()), { TASKMESH_CONCURRENCY: '-1' }), /concurrency/);
    });

    test('--concurrency with a bad value is a usage error (exit 2)', async () => {
      const r = await work(writeConfig(dir, 'w-good3', wcfg()), {}, ['--concurrency', '0']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--concurrency/);
      expect(r.stderr).toMatch(/usage: taskmesh-worker/);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    });
  });

  describe('taskmesh (CLI)', () => {
    test('ls with an unknown key', async () => {
      expectConfigError(await cli(['ls', '--config', writeConfig(dir, 'c-unknown', { ...clientConfig(prefix), bogus_key: true })]), /bogus_key/);
    });

    test('ls with a key of another role (port)', async () => {
      expectConfigError(await cli(['ls', '--config', writeConfig(dir, 'c-port', { ...clientConfig(prefix), port: 5000 })]), /\bport\b/);
    });

    test('ls with a key of another role (health)', async () => {
      expectConfigError(await cli(['ls', '--config', writeConfig(dir, 'c-health', { ...clientConfig(prefix), health: { interval_ms: 100 } })]), /health/);
    });

    test('status with a missing config file (the flag after the command)', async () => {
      const missing = join(dir, 'no-such-cli.json');
      expectConfigError(await cli(['status', 'some-id', '--config', missing]), new RegExp(esc(missing)));
    });

    test('ls with certificate paths of which one is missing', async () => {
      const missing = join(dir, 'cli-missing-ca.pem');
      const files = certFiles('client');
      expectConfigError(
        await cli(['ls', '--config', writeConfig(dir, 'c-pem', { ...clientConfig(prefix), key: files.key, cert: files.cert, ca: missing })]),
        /\bca\b/,
        new RegExp(esc(missing)),
      );
    });

    test('ls with a bad value: redis.command_timeout_ms "soon"', async () => {
      expectConfigError(
        await cli(['ls', '--config', writeConfig(dir, 'c-timeout', { redis: { prefix, command_timeout_ms: 'soon' } })]),
        /redis\.command_timeout_ms/,
      );
    });

    test('ls with an env override with a bad value: TASKMESH_REDIS_DB=minus', async () => {
      expectConfigError(await cli(['ls', '--config', writeConfig(dir, 'c-good', clientConfig(prefix))], { TASKMESH_REDIS_DB: 'minus' }), /redis\.db/);
    });

    test('a watcher config (certificates and share_key included) is accepted by the CLI', async () => {
      const files = certFiles('watcher');
      const r = await cli(['ls', '--config', writeConfig(dir, 'c-watcher', { share_key: 'k', ...files, ...clientConfig(emptyPrefix) })]);
      expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    });

    test('env overrides and TASKMESH_CONFIG work: TASKMESH_REDIS_PREFIX is honoured', async () => {
      const client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
      let id: string;
      try {
        id = await client.submit('nobody', { from: 'config.test' });
      } finally {
        await client.close();
      }
      const file = writeConfig(dir, 'c-prefix', clientConfig(prefix));

      // The file's prefix: the task is listed.
      const withFile = await cli(['ls', '--config', file]);
      expect(withFile.code).toBe(0);
      expect(withFile.stdout).toContain(id);

      // --config=FILE form, anywhere on the line.
      const eqForm = await cli(['ls', `--config=${file}`, '--state', 'QUEUED']);
      expect(eqForm.code).toBe(0);
      expect(eqForm.stdout).toContain(id);

      // TASKMESH_CONFIG names the file when --config is absent.
      const viaEnvFile = await cli(['ls'], { TASKMESH_CONFIG: file });
      expect(viaEnvFile.code).toBe(0);
      expect(viaEnvFile.stdout).toContain(id);

      // The environment wins over the file: an empty prefix lists nothing, exit 0.
      const overridden = await cli(['ls', '--config', file], { TASKMESH_REDIS_PREFIX: emptyPrefix });
      expect(overridden).toEqual({ code: 0, stdout: '', stderr: '' });

      // And the same with no file at all.
      const envOnly = await cli(['ls', '--json'], { TASKMESH_REDIS_PREFIX: emptyPrefix });
      expect(envOnly).toEqual({ code: 0, stdout: '', stderr: '' });
    });
  });
});
