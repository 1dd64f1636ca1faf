/**
 * The command line of every bin (SPEC section 8), parsed by `node:util` parseArgs: `--help` prints
 * the usage on stdout and exits 0; a usage error exits 2 with the usage line on stderr and nothing
 * on stdout, before any config is read or connection made; `--config` works anywhere, also as
 * `--config=FILE`.
 */
import {
  certFiles,
  cleanPrefix,
  clientConfig,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  runBin,
  SHARE_KEY,
  tmpDir,
  workerConfig,
  writeConfig,
  BINS,
} from './helpers';

type Bin = keyof typeof BINS;

const USAGE: Record<Bin, string> = {
  taskmesh: 'usage: taskmesh <command>',
  distributor: 'usage: taskmesh-distributor --config FILE',
  worker: 'usage: taskmesh-worker --config FILE --tasks PATH',
  watch: 'usage: taskmesh-watch --config FILE',
};

const BIN_NAMES = Object.keys(USAGE) as Bin[];

describe('bin command lines', () => {
  const prefix = randomPrefix('args');
  const dir = tmpDir('args');

  afterAll(async () => {
    await cleanPrefix(prefix);
  });

  describe.each(BIN_NAMES)('%s', (bin) => {
    test('--help and -h print the usage on stdout and exit 0', async () => {
      for (const flag of ['--help', '-h']) {
        const r = await runBin(bin, [flag], {}, 15000);
        expect({ flag, code: r.code, stderr: r.stderr }).toEqual({ flag, code: 0, stderr: '' });
        expect(r.stdout.startsWith(USAGE[bin])).toBe(true);
        expect(r.stdout).toContain('--log-level LEVEL');
      }
    });

    test('--help wins over a missing config', async () => {
      const r = await runBin(bin, ['--help', '--config', `${dir}/no-such-config.json`], {}, 15000);
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(USAGE[bin])).toBe(true);
    });

    test.each([
      ['an unknown option', ['--frobnicate']],
      ['an unknown short option', ['-x']],
      ['--config without a value', ['--config']],
      ['--config followed by another option', ['--config', '--help']],
      ['--log-level without a value', ['--log-level']],
      ['a value given to --help', ['--help=yes']],
    ])('%s exits 2 with the usage line on stderr', async (_what, args) => {
      const r = await runBin(bin, args, {}, 15000);
      expect({ code: r.code, stdout: r.stdout, usage: r.stderr.includes(USAGE[bin]) }).toEqual({ code: 2, stdout: '', usage: true });
      // One line naming the problem, then the usage: no stack trace.
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stderr.split('\n')[0]).toMatch(/^taskmesh(-\w+)?: /);
    });
  });

  test('each bin has its own usage errors', async () => {
    const cases: Array<[Bin, string[], RegExp]> = [
      ['distributor', ['extra-positional'], /unexpected argument extra-positional/],
      ['worker', ['--config', 'x.json'], /--tasks PATH is required/],
      ['worker', ['--tasks', FIXTURE_TASKS, '--concurrency', '0'], /--concurrency/],
      ['worker', ['--tasks', FIXTURE_TASKS, 'extra'], /unexpected argument extra/],
      ['watch', [], /one of them/],
      ['watch', ['--all', '--name', 'echo'], /one of them/],
      ['watch', ['--name='], /--name/],
      ['watch', ['--name'], /--name needs a value/],
      ['taskmesh', ['status', 'a', 'b'], /unexpected argument b/],
      ['taskmesh', ['status', 'x', '--names', 'a'], /unknown option --names/], // an option of another command
      ['taskmesh', ['ls', '--json=1'], /--json takes no value/],
      ['taskmesh', ['submit', 'echo', '--wait', '--no-wait'], /exclude each other/],
    ];
    const results = await Promise.all(cases.map(([bin, args]) => runBin(bin, args, {}, 15000)));
    results.forEach((r, i) => {
      const [bin, args, msg] = cases[i]!;
      expect({ bin, args, code: r.code, usage: r.stderr.includes(USAGE[bin]), stdout: r.stdout }).toEqual({ bin, args, code: 2, usage: true, stdout: '' });
      expect(r.stderr).toMatch(msg);
    });
  });

  test('--log-level LEVEL reaches the config as log.level, where it is validated', async () => {
    // A level no schema accepts: refused as a config error (exit 2) naming log.level, whether the
    // schema lacks the key or lists the levels. So the flag is passed on, not swallowed or ignored.
    const port = await freePort();
    const configs: Record<Bin, string> = {
      distributor: writeConfig(dir, 'll-d', distributorConfig(prefix, port)),
      worker: writeConfig(dir, 'll-w', workerConfig(prefix, [port])),
      watch: writeConfig(dir, 'll-watch', { share_key: SHARE_KEY, ...certFiles('watcher'), ...clientConfig(prefix) }),
      taskmesh: writeConfig(dir, 'll-cli', clientConfig(prefix)),
    };
    const extra: Record<Bin, string[]> = { distributor: [], worker: ['--tasks', FIXTURE_TASKS], watch: ['--all'], taskmesh: ['ls'] };
    const results = await Promise.all(
      BIN_NAMES.map((bin) => runBin(bin, [...extra[bin], '--config', configs[bin], '--log-level', 'no-such-level'], {}, 15000)),
    );
    results.forEach((r, i) => {
      const bin = BIN_NAMES[i]!;
      expect({ bin, code: r.code, stdout: r.stdout }).toEqual({ bin, code: 2, stdout: '' });
      expect(r.stderr).toMatch(/config error: log\.level/);
    });
  });

  test('taskmesh takes --config before the command, after it, and as --config=FILE', async () => {
    const cfg = writeConfig(dir, 'client', clientConfig(prefix));
    const lines: string[][] = [
      ['--config', cfg, 'status', 'no-such-task'],
      ['status', '--config', cfg, 'no-such-task'],
      ['status', 'no-such-task', `--config=${cfg}`],
      [`--config=${cfg}`, 'wait', 'no-such-task', '--timeout', '1'],
    ];
    const results = await Promise.all(lines.map((args) => runBin('taskmesh', args, {}, 15000)));
    results.forEach((r, i) => {
      // Exit 3 and one stderr line: the config was found and the task looked up.
      expect({ args: lines[i], code: r.code, lines: r.stderr.trim().split('\n').length }).toEqual({ args: lines[i], code: 3, lines: 1 });
    });
  });

  test('taskmesh dashboard (the taskmesh-dashboard bin) takes --help, refuses usage errors and passes --log-level on', async () => {
    const usage = 'usage: taskmesh dashboard --config FILE';
    const help = await runBin('taskmesh', ['dashboard', '--help'], {}, 15000);
    expect({ code: help.code, stderr: help.stderr }).toEqual({ code: 0, stderr: '' });
    expect(help.stdout.startsWith(usage)).toBe(true);
    expect(help.stdout).toContain('--log-level LEVEL');
    for (const args of [['--frobnicate'], ['--log-level'], ['extra']]) {
      const r = await runBin('taskmesh', ['dashboard', ...args], {}, 15000);
      expect({ args, code: r.code, stdout: r.stdout, usage: r.stderr.includes(usage) }).toEqual({ args, code: 2, stdout: '', usage: true });
    }
    const cfg = writeConfig(dir, 'll-dash', { id: 'args-dash', share_key: SHARE_KEY, ...certFiles('watcher'), ...clientConfig(prefix) });
    const bad = await runBin('taskmesh', ['dashboard', '--config', cfg, '--log-level', 'no-such-level'], {}, 15000);
    expect({ code: bad.code, stdout: bad.stdout }).toEqual({ code: 2, stdout: '' });
    expect(bad.stderr).toMatch(/config error: log\.level/);
    // --config anywhere on the line, before the command word too (SPEC section 8).
    const before = await runBin('taskmesh', ['--config', cfg, '--log-level', 'no-such-level', 'dashboard'], {}, 15000);
    expect({ code: before.code, stdout: before.stdout }).toEqual({ code: 2, stdout: '' });
    expect(before.stderr).toMatch(/config error: log\.level/);
  });

  test('a negative number is a value: --priority -5 is parsed, not taken for an option', async () => {
    const cfg = writeConfig(dir, 'client-neg', clientConfig(prefix));
    // A name the envelope rules refuse, so nothing is written: the error must be about the name.
    const r = await runBin('taskmesh', ['submit', 'bad name!', '--priority', '-5', '--config', cfg], {}, 15000);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/^taskmesh: name: /);
    const missing = await runBin('taskmesh', ['submit', 'echo', '--priority', '-x', '--config', cfg], {}, 15000);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--priority needs a value/);
  });

  test('without --config the bins read TASKMESH_CONFIG', async () => {
    const cfg = writeConfig(dir, 'client-env', clientConfig(prefix));
    const r = await runBin('taskmesh', ['status', 'no-such-task'], { TASKMESH_CONFIG: cfg }, 15000);
    expect(r.code).toBe(3);
  });
});
