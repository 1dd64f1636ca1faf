'use strict';
/**
 * The Redis floor: one client pushing tasks through the smallest set of Redis writes a task needs,
 * back to back (pipelined, `batch` tasks per step), with no distributor, worker or socket.
 * argv[2] JSON: { port, prefix, n, batch, mode: 'scripts' | 'plain' }
 *  - scripts: taskmesh's own Lua scripts through `Scripts` from @taskmesh/common/internal
 *    (intake, assign, start, finish), as the bins use them today;
 *  - plain: the same record writes as plain commands (HSET/SADD/ZADD/HINCRBY/SREM...).
 * Reports { mode, n, seconds, fallback? } over IPC.
 */
const { randomUUID, randomBytes } = require('node:crypto');
const Redis = require('ioredis');

const cfg = JSON.parse(process.argv[2]);
const redis = new Redis({ host: '127.0.0.1', port: cfg.port, protocol: 2, enableAutoPipelining: true, maxRetriesPerRequest: 3 });
const P = cfg.prefix;

async function plainBatch(ids, raws) {
  const proc = `${P}intake:floor-d`;
  await redis.lpush(`${P}new-task`, ...raws); // the public intake
  let pl = redis.pipeline();
  for (let i = 0; i < raws.length; i++) pl.lmove(`${P}new-task`, proc, 'RIGHT', 'LEFT'); // the reliable move
  await pl.exec();
  const now = Date.now();
  pl = redis.pipeline();
  ids.forEach((id, i) => {
    pl.lrem(proc, 1, raws[i]);
    pl.hset(
      `${P}task:${id}`,
      'id',
      id,
      'name',
      'noop',
      'config',
      '{}',
      'state',
      'QUEUED',
      'attempts',
      0,
      'max_attempts',
      3,
      'stalls',
      0,
      'max_stalls',
      5,
      'epoch',
      0,
      'worker',
      '',
      'distributor',
      '',
      'state_optional',
      '0',
      'clean_end',
      '0',
      'created_at',
      now,
      'updated_at',
      now,
    );
    pl.sadd(`${P}tasks`, id);
    pl.zadd(`${P}ready:noop`, now, id);
  });
  await pl.exec();
  pl = redis.pipeline();
  for (const id of ids) {
    pl.zrem(`${P}ready:noop`, id);
    pl.hincrby(`${P}task:${id}`, 'epoch', 1);
    pl.hincrby(`${P}task:${id}`, 'attempts', 1);
    pl.hset(`${P}task:${id}`, 'state', 'RUNNING', 'worker', 'floor-w', 'distributor', 'floor-d', 'started_at', now, 'updated_at', now);
    pl.sadd(`${P}worker-tasks:floor-w`, id);
  }
  await pl.exec();
  pl = redis.pipeline();
  for (const id of ids) pl.hset(`${P}task:${id}`, 'updated_at', now);
  await pl.exec();
  pl = redis.pipeline();
  for (const id of ids) {
    pl.srem(`${P}worker-tasks:floor-w`, id);
    pl.hset(`${P}task:${id}`, 'state', 'END', 'result', '1', 'ended_at', now, 'updated_at', now);
  }
  await pl.exec();
}

const fields = (id) => ({ id, name: 'noop', config: '{}', max_attempts: 3, max_stalls: 5, priority: 0, state_optional: false, clean_end: false });
const check = (what, got, want) => {
  if (got !== want) throw new Error(`${what} answered ${JSON.stringify(got)}`);
};

/** The batched scripts (take, intake, assignMany, finishMany): one call per step for the whole batch. */
function batchedScripts(scripts, keys) {
  const proc = `${P}intake:floor-d`;
  return async (ids, raws) => {
    await redis.lpush(keys.newTask, ...raws); // the public intake
    const taken = await scripts.take(proc, ids.length);
    const items = taken.map((raw) => ({ raw, fields: fields(JSON.parse(raw.toString()).id) }));
    const queued = await scripts.intake(proc, items, 'floor-d');
    check('intake', queued[0]?.kind, 'queued');
    const tasks = items.map((it) => ({ id: it.fields.id, assignment: randomBytes(8).toString('hex') }));
    const assigned = await scripts.assignMany('noop', 'floor-w', 'floor-d', tasks);
    check('assign', assigned[0]?.kind, 'assigned');
    const done = await scripts.finishMany(
      'floor-w',
      tasks.map((t, i) => ({ id: t.id, fence: { epoch: assigned[i].epoch, assignment: t.assignment }, outcome: 'END', payload: '1' })),
    );
    check('finish', done[0]?.result, 'recorded');
  };
}

/** The per-task scripts (intake, assign, start, finish), each task's calls pipelined together. */
function perTaskScripts(scripts) {
  const proc = `${P}intake:floor-d`;
  return async (ids, raws) => {
    await redis.rpush(proc, ...raws); // stands for the move from new-task
    const intake = await Promise.all(ids.map((id, i) => scripts.intake(proc, Buffer.from(raws[i]), fields(id), 'floor-d')));
    check('intake', intake[0]?.kind, 'queued');
    const assignments = ids.map(() => randomBytes(8).toString('hex'));
    const assigned = await Promise.all(ids.map((id, i) => scripts.assign(id, 'noop', 'floor-w', 'floor-d', assignments[i])));
    check('assign', assigned[0]?.kind, 'assigned');
    const fences = assigned.map((a, i) => ({ epoch: a.epoch, assignment: assignments[i] }));
    const started = await Promise.all(ids.map((id, i) => scripts.start(id, fences[i])));
    check('start', started[0], true);
    const done = await Promise.all(ids.map((id, i) => scripts.finish(id, 'floor-w', fences[i], 'END', '1')));
    check('finish', done[0]?.result, 'recorded');
  };
}

async function main() {
  let step = plainBatch;
  let fallback = null;
  let used = 'plain commands';
  if (cfg.mode === 'scripts') {
    // The scripts' API is internal and changing: try the batched one, then the per-task one.
    const errors = [];
    const { Scripts, Keys } = require('@taskmesh/common/internal');
    const keys = new Keys(P);
    const scripts = new Scripts(redis, keys);
    const tries = [];
    if (typeof scripts.take === 'function' && typeof scripts.assignMany === 'function' && typeof scripts.finishMany === 'function')
      tries.push(['batched scripts (take, intake, assignMany, finishMany)', batchedScripts(scripts, keys)]);
    tries.push(['per-task scripts (intake, assign, start, finish)', perTaskScripts(scripts)]);
    for (const [name, fn] of tries) {
      try {
        const ids = [randomUUID(), randomUUID()];
        await fn(
          ids,
          ids.map((id) => JSON.stringify({ id, name: 'noop', config: {} })),
        );
        step = fn;
        used = name;
        break;
      } catch (err) {
        errors.push(`${name}: ${err.message}`);
      }
    }
    if (step === plainBatch) fallback = `taskmesh's Scripts did not run as expected (${errors.join('; ')}); plain commands used`;
  }
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < cfg.n; done += cfg.batch) {
    const ids = [];
    for (let i = 0; i < Math.min(cfg.batch, cfg.n - done); i++) ids.push(randomUUID());
    await step(
      ids,
      ids.map((id) => JSON.stringify({ id, name: 'noop', config: {} })),
    );
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.send({ t: 'floor', mode: cfg.mode, used, n: cfg.n, seconds, fallback }, () => process.exit(0));
}

main().catch((err) => {
  process.send({ t: 'floor', error: err.message }, () => process.exit(1));
});
