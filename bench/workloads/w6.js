'use strict';
/**
 * W6 (taskmesh alone): the W4 measurement on a Redis that already holds many terminal records
 * (1,000,000; 100,000 with --quick), beside the same measurement on an empty Redis, alternating.
 * The records are what retention keeps: a hash per task with every public field, the id in
 * `<prefix>tasks`, and `<prefix>ended` (the retention index) scored by ended_at = now, so
 * retention removes none of them during the run.
 */
const { V } = require('../systems');
const w4 = require('./w4');
const { summarize } = require('../lib/report');

const SEED_LUA = `
local prefix, from, n, now, salt = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
for i = from, from + n - 1 do
  local id = salt .. '-0000-4000-8000-' .. string.format('%012d', i)
  redis.call('HSET', prefix .. 'task:' .. id, 'id', id, 'name', 'noop', 'config', '{"r":0}', 'state', 'END',
    'attempts', 1, 'max_attempts', 3, 'stalls', 0, 'max_stalls', 5, 'epoch', 1, 'worker', 'bench-worker-1',
    'distributor', 'bench-distributor', 'created_at', now, 'started_at', now, 'updated_at', now, 'ended_at', now,
    'result', '1', 'state_optional', '0', 'clean_end', '0')
  redis.call('SADD', prefix .. 'tasks', id)
  redis.call('ZADD', prefix .. 'ended', now, id)
end
return n`;

function seeder(count) {
  return async (redis, prefix) => {
    const salt = require('node:crypto').randomBytes(4).toString('hex');
    const now = String(Date.now());
    const sha = await redis.script('LOAD', SEED_LUA);
    const per = 10000;
    const inFlight = [];
    for (let i = 0; i < count; i += per) {
      inFlight.push(redis.evalsha(sha, 0, prefix, i, Math.min(per, count - i), now, salt));
      if (inFlight.length >= 4) await inFlight.shift();
    }
    await Promise.all(inFlight);
    const have = await redis.scard(`${prefix}tasks`);
    if (have !== count) throw new Error(`seeding made ${have} records, not ${count}`);
  };
}

function cases(opts) {
  const s = w4.shape(opts);
  const count = opts.quick ? 100000 : 1000000;
  const seeded = { ...V.taskmesh, key: 'taskmesh-seeded', label: `taskmesh, ${count.toLocaleString('en-US')} terminal records`, peer: false, seedCount: count };
  const empty = { ...V.taskmesh, key: 'taskmesh-empty', label: 'taskmesh, empty Redis', peer: false };
  return [
    {
      id: 'seeded',
      title: `W4 (${s.n.toLocaleString('en-US')} sleeping tasks, ${s.windowMs / 1000} s window) with ${count.toLocaleString('en-US')} terminal records vs an empty Redis`,
      systems: [seeded, empty],
      reference: 'taskmesh-empty',
      figures: w4.FIGURES,
      trial: (ctx, v) => w4.measure(ctx, v, { ...s, seed: v.seedCount ? seeder(v.seedCount) : undefined }),
    },
  ];
}

/** Within 10 %, or within 0.01 s for CPU seconds (one clock tick of /proc and getrusage). */
function within(results, key, text, absSlack) {
  const c = results.W6?.cases?.seeded;
  if (!c) return { text, status: 'not run' };
  const sums = summarize(c);
  const a = sums[key]['taskmesh-seeded'].median;
  const b = sums[key]['taskmesh-empty'].median;
  if (a == null || b == null) return { text, status: 'not run', detail: 'no figures' };
  const ok = a <= b * 1.1 || a - b <= absSlack;
  return { text, status: ok ? 'met' : 'not met', detail: `${a.toFixed(3)} vs ${b.toFixed(3)} on an empty Redis: ${(b === 0 ? Infinity : a / b).toFixed(2)}×` };
}

module.exports = {
  id: 'W6',
  title: 'long-running tasks beside a large history',
  cases,
  targets(results) {
    return [
      within(results, 'redisCpuS', 'W6 Redis CPU within 10 % of an empty Redis', 0.01),
      within(results, 'cmdsPerS', 'W6 Redis commands/s within 10 % of an empty Redis', 0),
      within(results, 'distributorCpuS', 'W6 distributor CPU within 10 % of an empty Redis', 0.01),
    ];
  },
};
