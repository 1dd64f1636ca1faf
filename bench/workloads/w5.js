'use strict';
/**
 * W5 live events: one task calls progress 5,000 times as fast as it can (taskmesh: ctx.progress in
 * a tight loop; BullMQ: job.updateProgress, every call pipelined) and one watcher receives them
 * (taskmesh: the watcher library connected straight to the worker; BullMQ: QueueEvents). Each event
 * carries its sub-ms send time, so latency = receive - send on the same clock. events/s = events
 * received / (last receive - first send). Each trial runs the task WARMUPS + 1 times and measures
 * the last; the first is reported separately as the cold figure (see `trial`).
 */
const { V } = require('../systems');
const { makeJobs, until } = require('../systems/base');
const { percentile } = require('../lib/stats');
const { wallNow } = require('../lib/child-report');

const SYSTEMS = [V.taskmesh, V.bullmq];
const FIGURES = [
  { key: 'eps', label: 'events/s received', better: 'higher', fmt: 'int' },
  { key: 'p50', label: 'latency p50 ms', better: 'lower', fmt: 'dec2' },
  { key: 'p99', label: 'latency p99 ms', better: 'lower', fmt: 'dec2' },
  { key: 'received', label: 'events received (of sent)', better: 'higher', fmt: 'int' },
  { key: 'coldEps', label: 'first task (cold): events/s', better: 'higher', fmt: 'int' },
  { key: 'coldP99', label: 'first task (cold): p99 ms', better: 'lower', fmt: 'dec2' },
];
/** Unmeasured runs of the same task before the measured one (see `trial`). */
const WARMUPS = 3;

/**
 * One task of `n` progress events watched from before it starts: its latencies (receipt - send,
 * both from `performance.timeOrigin + performance.now()` on this machine's clock, which agree
 * across processes to about 0.1 ms here) and its first send and last receipt.
 */
async function watchOne(cluster, n) {
  // The task waits `wait` ms before its first event, so the watcher is subscribed by then.
  const [job] = makeJobs(1, 'progress', { n, wait: 1000 });
  const lat = [];
  let firstSent = Infinity;
  let lastRecv = 0;
  let stop = async () => undefined;
  try {
    await cluster.submit([job]);
    stop = await cluster.onProgress(job.id, (sentAt) => {
      const now = wallNow();
      lat.push(now - sentAt);
      if (sentAt < firstSent) firstSent = sentAt;
      lastRecv = now;
    });
    await cluster.waitDone([job.id], 60000);
    // The last events may still be on their way after the END was recorded.
    await until(() => lat.length >= n || wallNow() - lastRecv > 1000, 10000, 'the last events', 20);
  } finally {
    await stop();
  }
  // A watcher that subscribed only after the task ended saw none of it: not a figure to report.
  if (lat.length === 0)
    throw new Error(`the watcher received none of the ${n} events (not subscribed within the task's ${job.data.wait} ms wait: machine overloaded?)`);
  return { lat, firstSent, lastRecv };
}

function trial(n) {
  return async (ctx, variant) => {
    const cluster = await variant.system.start(ctx, { workers: [10], options: variant.options });
    try {
      // Warm-up, the same for every system: WARMUPS tasks of the same shape through the same
      // watcher path, not measured. The cluster warm-up runs only no-op tasks, and the JIT takes
      // about three such tasks to settle (taskmesh's loop here: 37, 25, 11, 7, 7 ms); W5 measures
      // the steady state of a running worker and watcher. The first task is reported too ("cold").
      const cold = await watchOne(cluster, n);
      for (let w = 1; w < WARMUPS; w++) await watchOne(cluster, n);
      const { lat, firstSent, lastRecv } = await watchOne(cluster, n);
      const out = {
        eps: lat.length / ((lastRecv - firstSent) / 1000),
        p50: percentile(lat, 50),
        p99: percentile(lat, 99),
        received: lat.length,
        coldEps: cold.lat.length / ((cold.lastRecv - cold.firstSent) / 1000),
        coldP99: percentile(cold.lat, 99),
      };
      if (lat.length < n) out.note = `${n - lat.length} of ${n} events not received (coalesced or dropped)`;
      return out;
    } finally {
      await cluster.stop();
    }
  };
}

module.exports = {
  id: 'W5',
  title: 'live progress events to one watcher',
  cases() {
    return [{ id: '5k', title: '5,000 progress events from one task to one watcher', systems: SYSTEMS, figures: FIGURES, trial: trial(5000) }];
  },
  targets(results) {
    const { ratioTarget, limitTarget } = require('../lib/report');
    return [ratioTarget(results, '5k', 'eps', 10, 'W5 events/s ≥ 10 × BullMQ'), limitTarget(results, '5k', 'p99', 1, 'W5 latency p99 ≤ 1 ms')];
  },
};
