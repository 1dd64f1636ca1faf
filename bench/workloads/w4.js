'use strict';
/**
 * W4 cost of long tasks: N tasks sleeping on one worker (concurrency N). Once every function has
 * started and 2 s have passed, a window (20 s) measures what keeping them alive costs: Redis CPU
 * (INFO cpu), commands/s (INFO stats), Redis bytes per task (used_memory against before the
 * submit), and CPU and RSS of the worker and the distributor (/proc). Nothing polls Redis during
 * the window but the two INFO calls.
 */
const { V } = require('../systems');
const { makeJobs, sleep, until } = require('../systems/base');
const { ratioTarget, limitTarget, summarize } = require('../lib/report');

/** Redis with no client but the bench's two INFO calls: what any system pays at the least. */
const IDLE = { key: 'redis-idle', label: 'Redis alone (idle)', peer: false, idle: true };
const SYSTEMS = [V.taskmesh, V.bullmq, V.bee, IDLE];

async function measureIdle(ctx, { windowMs }) {
  await sleep(SETTLE_MS);
  const s0 = await ctx.redis.snapshot();
  await sleep(windowMs);
  const s1 = await ctx.redis.snapshot();
  return { redisCpuS: s1.cpuS - s0.cpuS, cmdsPerS: (s1.commands - s0.commands) / ((s1.at - s0.at) / 1000) };
}
const SETTLE_MS = 2000;

const FIGURES = [
  { key: 'redisCpuS', label: 'Redis CPU s', better: 'lower', fmt: 'dec3' },
  { key: 'cmdsPerS', label: 'Redis commands/s', better: 'lower', fmt: 'int' },
  { key: 'bytesPerTask', label: 'Redis bytes / task', better: 'lower', fmt: 'int' },
  { key: 'workerCpuS', label: 'worker CPU s', better: 'lower', fmt: 'dec2' },
  { key: 'workerRssMiB', label: 'worker RSS MiB', better: 'lower', fmt: 'dec1' },
  { key: 'distributorCpuS', label: 'distributor CPU s', better: 'lower', fmt: 'dec2' },
  { key: 'distributorRssMiB', label: 'distributor RSS MiB', better: 'lower', fmt: 'dec1' },
  { key: 'rampS', label: 'submit → all running s', better: 'lower', fmt: 'dec2' },
];

function shape(opts) {
  return opts.quick ? { n: 1000, windowMs: 5000, sleepMs: 20000 } : { n: 5000, windowMs: 20000, sleepMs: 40000 };
}

/** One W4 measurement; `seed(redis, prefix)` fills Redis first (W6). */
async function measure(ctx, variant, { n, windowMs, sleepMs, seed }) {
  if (variant.idle) return measureIdle(ctx, { windowMs });
  const cluster = await variant.system.start(ctx, { workers: [n], options: variant.options, seed });
  try {
    const base = await ctx.redis.snapshot();
    const jobs = makeJobs(n, 'sleep', { r: 2, ms: sleepMs });
    const t0 = Date.now();
    await cluster.submit(jobs);
    const budget = sleepMs - windowMs - SETTLE_MS - 2000;
    await until(
      () => cluster.startCount >= n,
      budget,
      `all ${n} tasks to run (${cluster.startCount} so far)`,
      20,
      () => cluster.checkAlive(),
    );
    const rampS = (Date.now() - t0) / 1000;
    await sleep(SETTLE_MS);
    const cs0 = await ctx.redis.commandstats();
    const s0 = await ctx.redis.snapshot();
    const p0 = cluster.procStats();
    await sleep(windowMs);
    const s1 = await ctx.redis.snapshot();
    const p1 = cluster.procStats();
    const cs1 = await ctx.redis.commandstats();
    cluster.checkAlive();
    const secs = (s1.at - s0.at) / 1000;
    const out = {
      redisCpuS: s1.cpuS - s0.cpuS,
      cmdsPerS: (s1.commands - s0.commands) / secs,
      bytesPerTask: (s1.usedMemory - base.usedMemory) / n,
      workerCpuS: p1.workers[0].cpuS - p0.workers[0].cpuS,
      workerRssMiB: p1.workers[0].rssBytes / 1048576,
      rampS,
    };
    if (p0.distributor && p1.distributor) {
      out.distributorCpuS = p1.distributor.cpuS - p0.distributor.cpuS;
      out.distributorRssMiB = p1.distributor.rssBytes / 1048576;
    }
    // Where Redis's commands went during the window (for profiling), most first.
    out.commandstats = Object.entries(cs1)
      .map(([cmd, v]) => [cmd, v.calls - (cs0[cmd]?.calls ?? 0), v.usec - (cs0[cmd]?.usec ?? 0)])
      .filter(([, calls]) => calls > 0)
      .sort((a, b) => b[2] - a[2])
      .slice(0, 8)
      .map(([cmd, calls, usec]) => ({ cmd, calls, usec }));
    if (cluster.finishCount > 0) out.note = `${cluster.finishCount} tasks finished before the window ended: figures are not a steady state`;
    return out;
  } finally {
    await cluster.stop();
  }
}

module.exports = {
  id: 'W4',
  title: 'cost of long-running tasks',
  FIGURES,
  shape,
  measure,
  cases(opts) {
    const s = shape(opts);
    return [
      {
        id: 'sleepers',
        title: `${s.n.toLocaleString('en-US')} tasks sleeping ${s.sleepMs / 1000} s on 1 worker × ${s.n.toLocaleString('en-US')}, ${s.windowMs / 1000} s window`,
        systems: SYSTEMS,
        figures: FIGURES,
        trial: (ctx, v) => measure(ctx, v, s),
      },
    ];
  },
  targets(results, opts) {
    const s = shape(opts);
    const limit = (0.2 * s.windowMs) / 20000;
    const t = [
      ratioTarget(results, 'sleepers', 'redisCpuS', 0.5, 'W4 Redis CPU ≤ ½ BullMQ’s'),
      ratioTarget(results, 'sleepers', 'workerRssMiB', 1, 'W4 worker RSS ≤ BullMQ’s'),
      limitTarget(results, 'sleepers', 'distributorCpuS', limit, `W4 distributor CPU ≤ ${limit.toFixed(2)} s over the ${s.windowMs / 1000} s window`),
    ];
    // The issue names BullMQ for the first two: compare against BullMQ, not the best peer.
    return t.map((x, i) => (i < 2 ? againstBull(results, x, ['redisCpuS', 'workerRssMiB'][i], [0.5, 1][i]) : x));
  },
};

function againstBull(results, target, key, max) {
  const c = results.W4?.cases?.sleepers;
  if (!c) return target;
  const sums = summarize(c);
  const tm = sums[key].taskmesh?.median;
  const bull = sums[key].bullmq?.median;
  if (tm == null || bull == null) return { ...target, status: 'not run', detail: 'no figures' };
  const r = bull === 0 ? Infinity : tm / bull;
  const idle = key === 'redisCpuS' ? sums[key]['redis-idle']?.median : null;
  const idleNote = idle != null ? ` (Redis alone, idle: ${idle.toFixed(3)})` : '';
  return { ...target, status: r <= max ? 'met' : 'not met', detail: `${tm.toFixed(3)} vs BullMQ ${bull.toFixed(3)}: ${r.toFixed(2)}×${idleNote}` };
}
