/**
 * The `taskmesh` CLI against real bins (SPEC section 8): submit (fire-and-forget and --wait),
 * status (--json), wait (exit 0 / 1 / 124), cancel, ls, usage errors (exit 2), unknown ids (exit 3),
 * and `certs`, whose certificates (like ones made with the openssl CLI) run a real mesh.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import {
  cleanPrefix,
  clientConfig,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  runBin,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type Proc,
} from './helpers';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const USAGE_LINE = 'usage: taskmesh <command>';

const lines = (s: string) => s.split('\n').filter((l) => l.length > 0);

describe('taskmesh CLI', () => {
  const prefix = randomPrefix('cli');
  const dir = tmpDir('cli');
  const procs: Proc[] = [];
  const extraPrefixes: string[] = [];
  let cfg: string;

  const tm = (args: string[], env: Record<string, string> = {}) => runBin('taskmesh', [...args, '--config', cfg], env, 20000);
  const statusJson = async (id: string): Promise<Record<string, unknown>> => {
    const r = await tm(['status', id, '--json']);
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };
  const submitId = async (args: string[]): Promise<string> => {
    const r = await tm(['submit', ...args]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^\S+\n$/);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    const port = await freePort();
    cfg = writeConfig(dir, 'client', clientConfig(prefix));
    const d = spawnBin('distributor', ['--config', writeConfig(dir, 'd', distributorConfig(prefix, port))], {}, 'distributor');
    procs.push(d);
    procs.push(spawnBin('worker', ['--config', writeConfig(dir, 'w', workerConfig(prefix, [port], { id: 'cli-w1' })), '--tasks', FIXTURE_TASKS], {}, 'cli-w1'));
    await d.waitForLog('worker connected', { worker: 'cli-w1' });
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await cleanPrefix(prefix);
    for (const p of extraPrefixes) await cleanPrefix(p);
  });

  const endedIds: string[] = [];

  test('submit --wait prints the id line, then the result, and exits 0', async () => {
    const r = await runBin('taskmesh', ['submit', 'echo', '{"x":1}', '--wait', '--config', cfg], {}, 20000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n');
    expect(out).toHaveLength(3);
    expect(out[0]).toMatch(UUID_RE);
    expect(out[1]).toBe('{"x":1}');
    expect(out[2]).toBe('');
    const rec = await statusJson(out[0]!);
    expect(rec.state).toBe('END');
    expect(rec.result).toEqual({ x: 1 });
    endedIds.push(out[0]!);
  });

  test('submit without --wait (and with --no-wait) prints only the id and returns at once', async () => {
    for (const flags of [[], ['--no-wait']]) {
      const id = await submitId(['sleep', '{"ms":20000}', ...flags]);
      expect(id).toMatch(UUID_RE);
      // The command returned long before the task could end.
      const rec = await statusJson(id);
      expect(['QUEUED', 'RUNNING']).toContain(rec.state);
      // Cancelling a RUNNING task reaches its function (ctx.signal), and frees the worker slot.
      const c = await tm(['cancel', id]);
      expect(c.code).toBe(0);
      await waitFor(`${id} CANCELLED`, async () => (await statusJson(id)).state === 'CANCELLED');
    }
  });

  test('submit with --id uses that id; the same id again is a usage error', async () => {
    const id = `cli-explicit-${Date.now()}`;
    expect(await submitId(['echo', '{"e":2}', '--id', id])).toBe(id);
    const again = await tm(['submit', 'echo', '{"e":3}', '--id', id]);
    expect(again.code).not.toBe(0);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain(id);
    const w = await tm(['wait', id]);
    expect(w).toEqual({ code: 0, stdout: '{"e":2}\n', stderr: '' });
    endedIds.push(id);
  });

  test('status --json prints one JSON object with numbers, parsed config/result and boolean flags', async () => {
    const id = await submitId(['echo', '{"n":7,"s":"x"}', '--max-attempts', '4', '--priority', '3', '--state-optional']);
    await waitFor('END', async () => (await statusJson(id)).state === 'END');
    const r = await tm(['status', id, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toHaveLength(1);
    const rec = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(rec).toMatchObject({
      id,
      name: 'echo',
      state: 'END',
      config: { n: 7, s: 'x' },
      result: { n: 7, s: 'x' },
      state_optional: true,
      clean_end: false,
      worker: 'cli-w1',
    });
    for (const k of ['attempts', 'max_attempts', 'stalls', 'epoch', 'created_at', 'started_at', 'updated_at', 'ended_at']) {
      expect({ k, type: typeof rec[k] }).toEqual({ k, type: 'number' });
    }
    expect(rec.attempts).toBe(1);
    expect(rec.max_attempts).toBe(4);
    expect(rec.epoch).toBe(1);
    expect(typeof rec.distributor).toBe('string');

    // The readable form names the same facts.
    const human = await tm(['status', id]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(id);
    expect(human.stdout).toMatch(/state:\s+END/);
    endedIds.push(id);
  });

  test('an unknown task id exits 3 with one stderr line (status, wait, cancel)', async () => {
    const cmds = ['status', 'wait', 'cancel'];
    const results = await Promise.all(cmds.map((cmd) => tm([cmd, 'no-such-task-id'])));
    results.forEach((r, i) => {
      const cmd = cmds[i];
      expect({ cmd, code: r.code, stdout: r.stdout, lines: lines(r.stderr).length }).toEqual({ cmd, code: 3, stdout: '', lines: 1 });
      expect(r.stderr).toContain('no-such-task-id');
    });
  });

  test('retry: a FAILED task runs again with a fresh budget and a new epoch; others are refused; unknown exits 3', async () => {
    // flaky fails its first attempt; with max_attempts 1 that is FAILED.
    const id = await submitId(['flaky', '{"succeedOn":2}', '--max-attempts', '1']);
    expect((await tm(['wait', id])).code).toBe(1);
    const failed = await statusJson(id);
    expect(failed.state).toBe('FAILED');
    const r = await tm(['retry', id]);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: 'QUEUED\n', stderr: '' });
    const w = await tm(['wait', id]);
    expect(w.code).toBe(0);
    const end = await statusJson(id);
    expect(end).toMatchObject({ state: 'END', attempts: 2, result: { attempt: 2 }, completions: 1 });
    expect(end.epoch as number).toBeGreaterThan(failed.epoch as number);
    const again = await tm(['retry', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('END');
    expect((await tm(['retry', 'no-such-task-id'])).code).toBe(3);
  });

  test('wait on a FAILED task exits 1 with the error on stderr', async () => {
    const id = await submitId(['fail', '{"message":"cli-boom-42"}', '--max-attempts', '1']);
    const r = await tm(['wait', id]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('cli-boom-42');
    expect(r.stderr).toContain('FAILED');
    const rec = await statusJson(id);
    expect(rec).toMatchObject({ state: 'FAILED', attempts: 1, error: 'cli-boom-42' });

    // submit --wait on a failing task: the id, then exit 1.
    const sw = await tm(['submit', 'fail', '{"message":"cli-boom-43"}', '--max-attempts', '1', '--wait']);
    expect(sw.code).toBe(1);
    expect(lines(sw.stdout)).toHaveLength(1);
    expect(sw.stderr).toContain('cli-boom-43');
  });

  test('wait --timeout 0.5 on a long task exits 124 quickly', async () => {
    const id = await submitId(['sleep', '{"ms":20000}']);
    const t0 = Date.now();
    const r = await tm(['wait', id, '--timeout', '0.5']);
    const took = Date.now() - t0;
    expect(r.code).toBe(124);
    expect(r.stdout).toBe('');
    expect(took).toBeLessThan(8000);
    expect(took).toBeGreaterThanOrEqual(500);
    // Clean up the long task.
    await tm(['cancel', id]);
    await waitFor(`${id} CANCELLED`, async () => (await statusJson(id)).state === 'CANCELLED');
  });

  test('cancel of a QUEUED task makes it CANCELLED, and wait on it exits 1', async () => {
    const id = await submitId(['nobody', '{}']);
    expect((await statusJson(id)).state).toBe('QUEUED');
    const r = await tm(['cancel', id]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('CANCELLED');
    expect((await statusJson(id)).state).toBe('CANCELLED');
    const w = await tm(['wait', id]);
    expect(w.code).toBe(1);
    expect(w.stderr).toContain('CANCELLED');
    // Cancelling again reports the terminal state and changes nothing.
    const again = await tm(['cancel', id]);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe('CANCELLED');
  });

  test('ls --state END --json prints one END record per line', async () => {
    expect(endedIds.length).toBeGreaterThanOrEqual(3);
    const r = await tm(['ls', '--state', 'END', '--json']);
    expect(r.code).toBe(0);
    const recs = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.length).toBeGreaterThanOrEqual(endedIds.length);
    expect(recs.every((x) => x.state === 'END')).toBe(true);
    const ids = recs.map((x) => x.id);
    for (const id of endedIds) expect(ids).toContain(id);

    const cancelled = await tm(['ls', '--state', 'CANCELLED', '--json']);
    const cids = lines(cancelled.stdout).map((l) => JSON.parse(l) as { id: string; state: string });
    expect(cids.length).toBeGreaterThanOrEqual(1);
    expect(cids.every((x) => x.state === 'CANCELLED')).toBe(true);
    for (const id of endedIds) expect(cids.map((x) => x.id)).not.toContain(id);

    // --config anywhere on the line, here before the command.
    const first = await runBin('taskmesh', ['--config', cfg, 'ls', '--state', 'END'], {}, 20000);
    expect(first.code).toBe(0);
    for (const id of endedIds) expect(first.stdout).toContain(id);

    const all = await tm(['ls']);
    expect(all.code).toBe(0);
    for (const id of endedIds) expect(all.stdout).toMatch(new RegExp(`${id}\\s+END\\s+echo`));
  });

  test('usage errors exit 2 with the usage line', async () => {
    const cases: string[][] = [
      [], // no command
      ['frobnicate'], // unknown command
      ['ls', '--frobnicate'], // unknown option
      ['submit', 'echo', '{x'], // bad JSON
      ['submit', 'echo', '[1,2]'], // JSON that is not an object
      ['submit'], // missing NAME
      ['submit', 'bad name!', '{}'], // name the envelope rules refuse
      ['submit', 'echo', '{}', '--max-attempts', 'two'],
      ['status'], // missing ID
      ['wait', 'x', '--timeout', 'soon'],
      ['ls', '--state', 'DONE'],
      ['certs'], // missing DIR
    ];
    const results = await Promise.all(cases.map((args) => tm(args)));
    results.forEach((r, i) => {
      const args = cases[i];
      expect({ args, code: r.code, usage: r.stderr.includes(USAGE_LINE), stdout: r.stdout }).toEqual({ args, code: 2, usage: true, stdout: '' });
      expect(r.stderr).not.toMatch(/^\s+at /m);
    });
    // None of the refused submits created a task.
    const ls = await tm(['ls', '--json']);
    expect(lines(ls.stdout).map((l) => (JSON.parse(l) as { name: string }).name)).not.toContain('bad name!');
  });

  describe('certificates', () => {
    /** A distributor and worker on their own prefix with the given cert files; one echo task must END. */
    async function runMesh(label: string, d: { key: string; cert: string; ca: string }, w: { key: string; cert: string; ca: string }): Promise<void> {
      const p = randomPrefix(label);
      extraPrefixes.push(p);
      const port = await freePort();
      const dp = spawnBin('distributor', ['--config', writeConfig(dir, `${label}-d`, { ...distributorConfig(p, port), ...d })], {}, `${label}-d`);
      procs.push(dp);
      const wp = spawnBin(
        'worker',
        ['--config', writeConfig(dir, `${label}-w`, { ...workerConfig(p, [port], { id: `${label}-w` }), ...w }), '--tasks', FIXTURE_TASKS],
        {},
        `${label}-w`,
      );
      procs.push(wp);
      await dp.waitForLog('worker connected', { worker: `${label}-w` });
      const c = writeConfig(dir, `${label}-c`, clientConfig(p));
      const r = await runBin('taskmesh', ['submit', 'echo', `{"mesh":"${label}"}`, '--wait', '--timeout', '15', '--config', c], {}, 20000);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(lines(r.stdout)[1]).toBe(`{"mesh":"${label}"}`);
      expect(dp.output).not.toMatch(/refused|TLS handshake failed/);
      await Promise.all([wp.stop(), dp.stop()]);
      expect(wp.exitCode).toBe(0);
      expect(dp.exitCode).toBe(0);
    }

    test('taskmesh certs DIR --names a,b writes a CA and one cert per name that run a mesh', async () => {
      const out = join(tmpDir('cli-certs'), 'nested', 'certs');
      const r = await runBin('taskmesh', ['certs', out, '--names', 'a,b'], {}, 30000);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      for (const f of ['ca.pem', 'a.pem', 'a-key.pem', 'b.pem', 'b-key.pem']) expect({ f, exists: existsSync(join(out, f)) }).toEqual({ f, exists: true });
      expect(existsSync(join(out, 'distributor.pem'))).toBe(false);

      const ca = new X509Certificate(readFileSync(join(out, 'ca.pem')));
      expect(ca.ca).toBe(true);
      for (const n of ['a', 'b']) {
        const leaf = new X509Certificate(readFileSync(join(out, `${n}.pem`)));
        expect(leaf.ca).toBe(false);
        expect(leaf.checkIssued(ca)).toBe(true);
        expect(leaf.verify(ca.publicKey)).toBe(true);
        expect(leaf.subjectAltName).toMatch(/DNS:localhost/);
        expect(leaf.subjectAltName).toMatch(/IP Address:127\.0\.0\.1/);
        expect(leaf.subject).toMatch(new RegExp(`CN=${n}`));
        expect(new Date(leaf.validTo).getTime()).toBeGreaterThan(Date.now() + 86400000);
      }
      // Running it again for a new name reuses the CA, so the new leaf joins the same mesh.
      const caBefore = readFileSync(join(out, 'ca.pem'), 'utf8');
      const again = await runBin('taskmesh', ['certs', out, '--names', 'c'], {}, 30000);
      expect(again.code).toBe(0);
      expect(readFileSync(join(out, 'ca.pem'), 'utf8')).toBe(caBefore);
      expect(new X509Certificate(readFileSync(join(out, 'c.pem'))).verify(ca.publicKey)).toBe(true);

      const files = (n: string) => ({ key: join(out, `${n}-key.pem`), cert: join(out, `${n}.pem`), ca: join(out, 'ca.pem') });
      await runMesh('clicerts', files('a'), files('c'));
    });

    test('certificates made with the openssl CLI run a mesh too', async () => {
      const d = tmpDir('cli-openssl');
      const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] });
      ossl(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'ca-key.pem',
        '-out',
        'ca.pem',
        '-days',
        '2',
        '-subj',
        '/CN=openssl test CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      );
      writeFileSync(
        join(d, 'leaf.ext'),
        'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
      );
      for (const n of ['od', 'ow']) {
        ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${n}-key.pem`, '-out', `${n}.csr`, '-subj', `/CN=${n}`);
        ossl(
          'x509',
          '-req',
          '-in',
          `${n}.csr`,
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca-key.pem',
          '-CAcreateserial',
          '-out',
          `${n}.pem`,
          '-days',
          '2',
          '-extfile',
          'leaf.ext',
        );
      }
      const files = (n: string) => ({ key: join(d, `${n}-key.pem`), cert: join(d, `${n}.pem`), ca: join(d, 'ca.pem') });
      await runMesh('cliossl', files('od'), files('ow'));
    });
  });
});
