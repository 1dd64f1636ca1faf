/**
 * Intake's hand-over: with a free worker slot for each task, the intake script starts a task at
 * once (no ready-queue read, no assign call), unless its ready queue holds older tasks, which it
 * then queues behind. Then the same end to end: tasks submitted one by one to an idle mesh start
 * without ever entering a ready queue, and a task behind a waiting one keeps its place.
 */
import { Keys, Scripts, parseEnvelope, type IntakeItem } from '@taskmesh/common/internal';
import { TaskClient, loadConfig } from '@taskmesh/common';
import { cleanPrefix, clientConfig, randomPrefix, redis, RedisServer, waitFor } from './helpers';
import { Cluster } from './faults/cluster';

function item(raw: string): IntakeItem {
  const p = parseEnvelope(raw, 65536);
  if (!p.ok) throw new Error(p.reason);
  return { raw, fields: p.fields };
}

describe('intake hand-over (the script)', () => {
  const prefix = randomPrefix('handover');
  const keys = new Keys(prefix);
  const r = redis();
  const scripts = new Scripts(r, keys);
  const processing = keys.intake('d1');
  afterAll(async () => {
    await cleanPrefix(prefix);
    r.disconnect();
  });

  async function take(raws: string[]): Promise<IntakeItem[]> {
    await r.lpush(processing, ...raws);
    return raws.map(item);
  }

  test("an empty ready queue: the task starts on the slot's worker, recorded as the assign script records it", async () => {
    const [it] = await take([JSON.stringify({ id: 'h1', name: 'echo', config: { a: 1 }, clean_end: true })]);
    const [res] = await scripts.intake(processing, [it!], 'd1', [{ worker: 'w1', assignment: 'asg-1' }]);
    expect(res).toEqual({ kind: 'assigned', epoch: 1, attempt: 1, config: '{"a":1}', stateOptional: false, cleanEnd: true, queuedAt: expect.any(Number) });
    const rec = await r.hgetall(keys.task('h1'));
    expect(rec).toMatchObject({ id: 'h1', name: 'echo', state: 'RUNNING', epoch: '1', attempts: '1', worker: 'w1', distributor: 'd1', assignment: 'asg-1' });
    expect(Number(rec.started_at)).toBeGreaterThan(0);
    expect(await r.zcard(keys.ready('echo'))).toBe(0);
    expect(await r.sismember(keys.workerTasks('w1'), 'h1')).toBe(1);
    expect(await r.sismember(keys.assigned, 'w1')).toBe(1);
    expect(await r.sismember(keys.tasks, 'h1')).toBe(1);
    expect(await r.llen(processing)).toBe(0);
    // The fenced end write accepts exactly this attempt.
    expect((await scripts.finish('h1', 'w1', { epoch: 1, assignment: 'asg-1' }, 'END', '{"ok":true}')).result).toBe('recorded');
  });

  test('a ready queue holding older tasks: queued behind them, its slot unused', async () => {
    const [older] = await take([JSON.stringify({ id: 'q1', name: 'slow', config: {} })]);
    expect(await scripts.intake(processing, [older!], 'd1')).toEqual([{ kind: 'queued', id: 'q1' }]);
    const [newer] = await take([JSON.stringify({ id: 'q2', name: 'slow', config: {} })]);
    expect(await scripts.intake(processing, [newer!], 'd1', [{ worker: 'w1', assignment: 'asg-2' }])).toEqual([{ kind: 'queued', id: 'q2' }]);
    expect(await r.zrange(keys.ready('slow'), 0, -1)).toEqual(['q1', 'q2']);
    expect(await r.hget(keys.task('q2'), 'state')).toBe('QUEUED');
    expect(await r.sismember(keys.workerTasks('w1'), 'q2')).toBe(0);
  });

  test("a record a client's submit made: its own fields count; a duplicate in the same batch is dead-lettered", async () => {
    const client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
    try {
      const id = await client.submit('echo', { from: 'client' }, { state_optional: true });
      const raw = (await r.lrange(keys.newTask, 0, -1)).find((e) => e.includes(id))!;
      await r.lrem(keys.newTask, 1, raw);
      const [a, b] = await take([raw, raw]);
      const res = await scripts.intake(processing, [a!, b!], 'd1', [
        { worker: 'w2', assignment: 'asg-3' },
        { worker: 'w2', assignment: 'asg-4' },
      ]);
      expect(res[0]).toMatchObject({ kind: 'assigned', epoch: 1, attempt: 1, config: '{"from":"client"}', stateOptional: true });
      expect(res[1]).toEqual({ kind: 'dead', reason: `task id ${id} already exists in state RUNNING` });
      expect(await r.hget(keys.task(id), 'assignment')).toBe('asg-3');
    } finally {
      await client.close();
    }
  });
});

describe('intake hand-over (a mesh)', () => {
  // A Redis of its own: the test counts the commands the mesh sends.
  let server: RedisServer;
  let r: ReturnType<typeof redis>;
  let cluster: Cluster;
  beforeAll(async () => {
    server = await RedisServer.start();
    r = redis(server.url);
    cluster = await new Cluster({
      label: 'handover-mesh',
      workers: 1,
      redisUrl: server.url,
      env: { TASKMESH_LOG_LEVEL: 'debug' },
      worker: { concurrency: 2 },
    }).start();
    // Hand-over waits until the distributor has read every ready queue empty once.
    await cluster.distributors[0]!.waitForLog('ready queues empty: intake may start new tasks at once');
  });
  afterAll(async () => {
    await cluster.stop();
    r.disconnect();
    await server.stopProcess();
  });

  /** ZREM calls so far: a task leaves a ready queue only by the assign script's ZREM. */
  const zrems = async () => Number(/cmdstat_zrem:calls=(\d+)/.exec(await r.info('commandstats'))?.[1] ?? 0);

  test('tasks submitted one by one to an idle worker never enter a ready queue; with both slots busy the next one waits its turn there', async () => {
    const { client, prefix } = cluster;
    const before = await zrems();
    for (let i = 0; i < 10; i++) {
      const id = await client.submit('echo', { i });
      expect((await client.wait(id, { timeoutMs: 10000 })).state).toBe('END');
    }
    expect(await zrems()).toBe(before);

    // Both slots taken by sleepers: a third task goes to the ready queue and starts when one ends.
    const sleepers = [await client.submit('sleep', { ms: 1500 }), await client.submit('sleep', { ms: 1500 })];
    await waitFor('both sleepers running', async () => (await Promise.all(sleepers.map((s) => client.status(s)))).every((x) => x?.state === 'RUNNING'));
    const third = await client.submit('echo', { third: true });
    await waitFor('the third task queued', async () => (await r.zscore(`${prefix}ready:echo`, third)) !== null);
    expect((await client.wait(third, { timeoutMs: 10000 })).state).toBe('END');
    expect(await zrems()).toBe(before + 1);
    for (const s of sleepers) expect((await client.wait(s, { timeoutMs: 10000 })).state).toBe('END');
  });
});
