/**
 * The topology keys (SPEC section 7): `redis.sentinels` + `redis.sentinel_name` and `redis.cluster`,
 * for every role, from the file or from TASKMESH_* variables (JSON, like `distributors`). A bad
 * value, both topologies at once, or a cluster with a prefix that holds no hash tag stop the bin
 * with exit 2 and one stderr line naming the key. Nothing here reaches any Redis.
 */
import { ConfigError, loadConfig } from '@taskmesh/common';
import { runBin, tmpDir, workerConfig, distributorConfig, FIXTURE_TASKS, writeConfig } from '../helpers';

type Result = Awaited<ReturnType<typeof runBin>>;

function expectConfigError(r: Result, key: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  const report = `exit ${r.code}\nstderr:\n${r.stderr}\nstdout:\n${r.stdout}`;
  expect({ code: r.code, lines: lines.length, report }).toEqual({ code: 2, lines: 1, report });
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(lines[0]).toMatch(key);
}

const SEEDS: Array<[string, number]> = [
  ['127.0.0.1', 7001],
  ['127.0.0.1', 7002],
];

/** loadConfig with some TASKMESH_* variables set for the call only. */
function withEnv<T>(env: Record<string, string>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('topology configuration', () => {
  const dir = tmpDir('topocfg');
  const dcfg = (redis: Record<string, unknown>) => distributorConfig('x:', 5999, { redis });
  const wcfg = (redis: Record<string, unknown>) => workerConfig('x:', [5999], { redis });
  const dist = (name: string, redis: Record<string, unknown>, env: Record<string, string> = {}) =>
    runBin('distributor', ['--config', writeConfig(dir, name, dcfg(redis))], env, 15000);
  const work = (name: string, redis: Record<string, unknown>) =>
    runBin('worker', ['--config', writeConfig(dir, name, wcfg(redis)), '--tasks', FIXTURE_TASKS], {}, 15000);
  const cli = (name: string, redis: Record<string, unknown>) => runBin('taskmesh', ['ls', '--config', writeConfig(dir, name, { redis })], {}, 15000);

  test('defaults: no sentinels, name mymaster, no cluster', () => {
    const c = loadConfig('cli', { redis: {} });
    expect(c.redis.sentinels).toBeNull();
    expect(c.redis.sentinel_name).toBe('mymaster');
    expect(c.redis.cluster).toBeNull();
  });

  test('values from the file, for every role', () => {
    const s = loadConfig('cli', { redis: { sentinels: SEEDS, sentinel_name: 'prod' } });
    expect(s.redis.sentinels).toEqual(SEEDS);
    expect(s.redis.sentinel_name).toBe('prod');
    const c = loadConfig('cli', { redis: { cluster: SEEDS, prefix: '{tm}:' } });
    expect(c.redis.cluster).toEqual(SEEDS);
  });

  test('TASKMESH_REDIS_SENTINELS, _SENTINEL_NAME and _CLUSTER override the file (JSON, like TASKMESH_DISTRIBUTORS)', () => {
    const s = withEnv({ TASKMESH_REDIS_SENTINELS: JSON.stringify(SEEDS), TASKMESH_REDIS_SENTINEL_NAME: 'other' }, () =>
      loadConfig('cli', { redis: { sentinels: [['a', 1]] } }),
    );
    expect(s.redis.sentinels).toEqual(SEEDS);
    expect(s.redis.sentinel_name).toBe('other');
    const c = withEnv({ TASKMESH_REDIS_CLUSTER: JSON.stringify(SEEDS), TASKMESH_REDIS_PREFIX: '{env}:' }, () => loadConfig('cli', {}));
    expect(c.redis.cluster).toEqual(SEEDS);
    expect(c.redis.prefix).toBe('{env}:');
  });

  test('a bad TASKMESH_REDIS_CLUSTER is refused naming the key', () => {
    expect(() => withEnv({ TASKMESH_REDIS_CLUSTER: '127.0.0.1:7001' }, () => loadConfig('cli', { redis: { prefix: '{tm}:' } }))).toThrow(/redis\.cluster/);
  });

  test('the prefix hash tag rule: a tag needs a non-empty {...}', () => {
    expect(() => loadConfig('cli', { redis: { cluster: SEEDS, prefix: 'tm:' } })).toThrow(ConfigError);
    expect(() => loadConfig('cli', { redis: { cluster: SEEDS, prefix: '{}:' } })).toThrow(/redis\.prefix/);
    expect(() => loadConfig('cli', { redis: { cluster: SEEDS, prefix: '{tm:' } })).toThrow(/redis\.prefix/);
    expect(loadConfig('cli', { redis: { cluster: SEEDS, prefix: 'app:{tm}:' } }).redis.prefix).toBe('app:{tm}:');
    // Without a cluster any prefix is fine.
    expect(loadConfig('cli', { redis: { prefix: 'tm:' } }).redis.prefix).toBe('tm:');
  });

  test('distributor: redis.cluster with a prefix without a hash tag exits 2 naming redis.prefix', async () => {
    expectConfigError(await dist('d-notag', { cluster: SEEDS, prefix: 'tm:' }), /config error: redis\.prefix: .*hash tag/);
  });

  test('worker: redis.cluster with a prefix without a hash tag exits 2 naming redis.prefix', async () => {
    expectConfigError(await work('w-notag', { cluster: SEEDS, prefix: 'tm:' }), /config error: redis\.prefix: .*hash tag/);
  });

  test('taskmesh CLI: redis.cluster with a prefix without a hash tag exits 2 naming redis.prefix', async () => {
    expectConfigError(await cli('c-notag', { cluster: SEEDS, prefix: 'tm:' }), /config error: redis\.prefix: .*hash tag/);
  });

  test('sentinels and cluster together exit 2 naming redis.cluster', async () => {
    expectConfigError(await dist('d-both', { cluster: SEEDS, sentinels: SEEDS, prefix: '{tm}:' }), /config error: redis\.cluster: .*redis\.sentinels/);
  });

  test('bad values exit 2 naming the key', async () => {
    expectConfigError(await dist('d-sent-str', { sentinels: '127.0.0.1:26379' }), /redis\.sentinels/);
    expectConfigError(await work('w-sent-port', { sentinels: [['127.0.0.1', 'x']] }), /redis\.sentinels/);
    expectConfigError(await dist('d-sent-empty', { sentinels: [] }), /redis\.sentinels/);
    expectConfigError(await dist('d-sent-name', { sentinels: SEEDS, sentinel_name: '' }), /redis\.sentinel_name/);
    expectConfigError(await work('w-cluster-port', { cluster: [['127.0.0.1', 70000]], prefix: '{tm}:' }), /redis\.cluster/);
    expectConfigError(await dist('d-cluster-env', {}, { TASKMESH_REDIS_CLUSTER: '[["127.0.0.1"]]' }), /redis\.cluster/);
  });

  test('keys that a topology makes meaningless are refused, not ignored', async () => {
    expectConfigError(await dist('d-cluster-host', { cluster: SEEDS, prefix: '{tm}:', host: '10.0.0.1' }), /config error: redis\.host: .*redis\.cluster/);
    expectConfigError(await dist('d-sent-port', { sentinels: SEEDS, port: 6380 }), /config error: redis\.port: .*redis\.sentinels/);
    expectConfigError(await dist('d-cluster-db', { cluster: SEEDS, prefix: '{tm}:', db: 2 }), /config error: redis\.db: /);
  });
});
