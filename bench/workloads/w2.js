'use strict';
/**
 * W2 latency at a steady rate: tasks submitted one by one at a fixed rate (200/s) into a warmed-up
 * cluster of 1 worker × 100. submit = just before the producer's call; start = the task function's
 * first line (reported over IPC by every system alike); END = what the system records as the end
 * (taskmesh `ended_at`, BullMQ `finishedOn`; Bee-Queue records none, so its worker's `succeeded`
 * event, which comes after its write is acknowledged).
 */
const { V } = require('../systems');
const { makeJobs, sleep } = require('../systems/base');
const { percentile } = require('../lib/stats');
const { ratioTarget } = require('../lib/report');

const SYSTEMS = [V.taskmesh, V.bullmq, V.bee];
const RATE = 200;

const FIGURES = [];
for (const [k, label] of [['start', 'submit→start'], ['end', 'submit→END']]) {
  for (const p of ['p50', 'p95', 'p99', 'max']) FIGURES.push({ key: `${k}_${p}`, label: `${label} ${p} ms`, better: 'lower', fmt: 'dec1' });
}

function trial(n) {
  return async (ctx, variant) => {
    const cluster = await variant.system.start(ctx, { workers: [100], options: variant.options });
    try {
      const jobs = makeJobs(n, 'noop', { r: 1 });
      const submitted = new Map();
      const t0 = Date.now() + 20;
      let next = 0;
      // Open loop: at each wake-up, submit every task whose time has come (one call each, no batching).
      while (next < n) {
        const due = Math.min(n, Math.floor(((Date.now() - t0) * RATE) / 1000) + 1);
        const calls = [];
        for (; next < due; next++) {
          const j = jobs[next];
          submitted.set(j.id, Date.now());
          calls.push(cluster.submit([j]));
        }
        await Promise.all(calls);
        const wait = t0 + (next * 1000) / RATE - Date.now();
        if (wait > 0) await sleep(wait);
      }
      await cluster.waitDone(jobs.map((j) => j.id), 60000);
      await sleep(60); // the last IPC reports
      const ends = await cluster.endTimes(jobs.map((j) => j.id));
      const startLat = [];
      const endLat = [];
      for (const j of jobs) {
        const sub = submitted.get(j.id);
        const st = cluster.starts.get(j.id);
        if (st) startLat.push(st[0].ts - sub);
        const e = ends.get(j.id);
        if (e) endLat.push(e - sub);
      }
      const out = {};
      for (const [k, xs] of [['start', startLat], ['end', endLat]]) {
        out[`${k}_p50`] = percentile(xs, 50);
        out[`${k}_p95`] = percentile(xs, 95);
        out[`${k}_p99`] = percentile(xs, 99);
        out[`${k}_max`] = percentile(xs, 100);
      }
      const missing = [startLat.length < n ? `${n - startLat.length} starts` : '', endLat.length < n ? `${n - endLat.length} end times` : ''].filter(Boolean);
      if (missing.length) out.note = `missing ${missing.join(', ')}`;
      return out;
    } finally {
      await cluster.stop();
    }
  };
}

module.exports = {
  id: 'W2',
  title: 'latency at a steady 200 tasks/s',
  cases(opts) {
    const n = opts.quick ? 400 : 2000;
    return [{ id: 'rate200', title: `${n.toLocaleString('en-US')} no-op tasks at ${RATE}/s, 1 worker × 100`, systems: SYSTEMS, figures: FIGURES, trial: trial(n) }];
  },
  targets(results) {
    return [
      ratioTarget(results, 'rate200', 'start_p99', 1, 'W2 submit→start p99 ≤ fastest peer’s'),
      ratioTarget(results, 'rate200', 'end_p99', 1, 'W2 submit→END p99 ≤ fastest peer’s'),
    ];
  },
};
