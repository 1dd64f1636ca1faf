'use strict';
/**
 * W2 latency at a steady rate: tasks submitted one by one at a fixed rate (200/s) into a warmed-up
 * cluster of 1 worker × 100. submit = just before the producer's call; start = the task function's
 * first line; END = the worker's event that the completion was recorded (taskmesh's `task` event
 * with state END, BullMQ's `completed`, Bee-Queue's `succeeded`: each after its Redis write was
 * acknowledged). Both are reported over IPC with sub-millisecond wall-clock times, by every system
 * alike. Without such an event a task's END falls back to the recorded time (whole milliseconds).
 */
const { V } = require('../systems');
const { makeJobs, sleep } = require('../systems/base');
const { percentile } = require('../lib/stats');
const { ratioTarget } = require('../lib/report');
const { wallNow } = require('../lib/child-report');

const SYSTEMS = [V.taskmesh, V.bullmq, V.bee];
const RATE = 200;

const FIGURES = [];
for (const [k, label] of [
  ['start', 'submit→start'],
  ['end', 'submit→END'],
]) {
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
          submitted.set(j.id, wallNow());
          calls.push(cluster.submit([j]));
        }
        await Promise.all(calls);
        const wait = t0 + (next * 1000) / RATE - Date.now();
        if (wait > 0) await sleep(wait);
      }
      await cluster.waitDone(
        jobs.map((j) => j.id),
        60000,
      );
      await sleep(60); // the last IPC reports
      // END: when the worker heard its completion was recorded (all three systems have such an
      // event, after the write is acknowledged); else the time the system recorded.
      const recorded = await cluster.endTimes(jobs.map((j) => j.id));
      let fromRecord = 0;
      const ends = new Map();
      for (const j of jobs) {
        if (cluster.completions.has(j.id)) ends.set(j.id, cluster.completions.get(j.id));
        else if (recorded.has(j.id)) {
          ends.set(j.id, recorded.get(j.id));
          fromRecord++;
        }
      }
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
      for (const [k, xs] of [
        ['start', startLat],
        ['end', endLat],
      ]) {
        out[`${k}_p50`] = percentile(xs, 50);
        out[`${k}_p95`] = percentile(xs, 95);
        out[`${k}_p99`] = percentile(xs, 99);
        out[`${k}_max`] = percentile(xs, 100);
      }
      const missing = [
        startLat.length < n ? `missing ${n - startLat.length} starts` : '',
        endLat.length < n ? `missing ${n - endLat.length} end times` : '',
      ].filter(Boolean);
      if (fromRecord) missing.push(`${fromRecord} END times from the record (whole ms), no worker event`);
      if (missing.length) out.note = missing.join('; ');
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
    return [
      { id: 'rate200', title: `${n.toLocaleString('en-US')} no-op tasks at ${RATE}/s, 1 worker × 100`, systems: SYSTEMS, figures: FIGURES, trial: trial(n) },
    ];
  },
  targets(results) {
    return [
      ratioTarget(results, 'rate200', 'start_p99', 1, 'W2 submit→start p99 ≤ fastest peer’s'),
      ratioTarget(results, 'rate200', 'end_p99', 1, 'W2 submit→END p99 ≤ fastest peer’s'),
    ];
  },
};
