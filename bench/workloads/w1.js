'use strict';
/**
 * W1 throughput: N no-op tasks submitted as fast as the producer can (pipelined, 1,000 per call)
 * into an idle, warmed-up cluster; tasks/s = N / (submit start -> all completed in Redis).
 */
const { V } = require('../systems');
const { makeJobs } = require('../systems/base');
const { ratioTarget } = require('../lib/report');

const SYSTEMS = [V.taskmesh, V.bullmq, V.bee];

function figures() {
  return [
    { key: 'tps', label: 'tasks/s', better: 'higher', fmt: 'int' },
    { key: 'submitS', label: 'producer calls s (part of the above)', better: 'lower', fmt: 'dec2' },
    { key: 'redisCpuMsPer1k', label: 'Redis CPU ms / 1k tasks', better: 'lower', fmt: 'int' },
    { key: 'cmdsPerTask', label: 'Redis commands / task', better: 'lower', fmt: 'dec1' },
    { key: 'workerCpuMsPer1k', label: 'worker CPU ms / 1k tasks', better: 'lower', fmt: 'int' },
    { key: 'distributorCpuMsPer1k', label: 'distributor CPU ms / 1k tasks', better: 'lower', fmt: 'int' },
  ];
}

function trial(n, workers) {
  return async (ctx, variant) => {
    const cluster = await variant.system.start(ctx, { workers, options: variant.options });
    try {
      const jobs = makeJobs(n, 'noop', { r: 0 });
      const ids = jobs.map((j) => j.id);
      const p0 = cluster.procStats();
      const s0 = await ctx.redis.snapshot();
      const polled0 = cluster.pollCommands;
      const c0 = process.env.BENCH_COMMANDSTATS ? await ctx.redis.commandstats() : null;
      const t0 = Date.now();
      await cluster.submit(jobs);
      const tSubmitted = Date.now();
      const t1 = await cluster.waitDone(ids, Math.max(60000, n * 2));
      const s1 = await ctx.redis.snapshot();
      // BENCH_COMMANDSTATS=1: where Redis's time went, per command, in µs and calls per task.
      if (c0) {
        const c1 = await ctx.redis.commandstats();
        const rows = Object.entries(c1)
          .map(([k, v]) => [k, (v.usec - (c0[k]?.usec ?? 0)) / n, (v.calls - (c0[k]?.calls ?? 0)) / n])
          .filter(([, us]) => us > 0.05)
          .sort((a, b) => b[1] - a[1]);
        process.stderr.write(
          `  ${variant.label ?? variant.system.name} commandstats per task: ${rows.map(([k, us, c]) => `${k} ${us.toFixed(1)}µs/${c.toFixed(2)}`).join(', ')}\n`,
        );
      }
      const p1 = cluster.procStats();
      const cpu = (a, b) => (a && b ? b.cpuS - a.cpuS : NaN);
      const workerCpu = p0.workers.reduce((sum, a, i) => sum + cpu(a, p1.workers[i]), 0);
      const out = {
        tps: n / ((t1 - t0) / 1000),
        redisCpuMsPer1k: ((s1.cpuS - s0.cpuS) * 1e6) / n,
        submitS: (tSubmitted - t0) / 1000,
        // Less the bench's own completion checks and the first INFO (counted once it ran).
        cmdsPerTask: (s1.commands - s0.commands - (cluster.pollCommands - polled0) - 1) / n,
        workerCpuMsPer1k: (workerCpu * 1e6) / n,
      };
      if (p0.distributor) out.distributorCpuMsPer1k = (cpu(p0.distributor, p1.distributor) * 1e6) / n;
      if (cluster.failed) out.note = `${cluster.failed} tasks did not end END`;
      return out;
    } finally {
      await cluster.stop();
    }
  };
}

module.exports = {
  id: 'W1',
  title: 'throughput of no-op tasks',
  cases(opts) {
    const n = opts.quick ? 5000 : 10000;
    const cases = [
      { id: '1x100', title: `${n.toLocaleString('en-US')} no-op tasks, 1 worker × 100`, systems: SYSTEMS, figures: figures(), trial: trial(n, [100]) },
      {
        id: '2x50',
        title: `${n.toLocaleString('en-US')} no-op tasks, 2 worker processes × 50`,
        systems: SYSTEMS,
        figures: figures(),
        trial: trial(n, [50, 50]),
      },
    ];
    if (!opts.quick)
      cases.push({ id: '100k', title: '100,000 no-op tasks, 1 worker × 100', systems: SYSTEMS, figures: figures(), trial: trial(100000, [100]) });
    return cases;
  },
  targets(results) {
    return ['1x100', '2x50'].map((c) =>
      ratioTarget(results, c, 'tps', 1.5, `W1 ${c === '1x100' ? '1 worker × 100' : '2 workers × 50'}: tasks/s ≥ 1.5 × fastest peer`),
    );
  },
};
