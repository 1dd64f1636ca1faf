'use strict';
/**
 * W3 failover: 2 worker processes; one 10 s task; its worker is SIGKILLed 1 s after the task's
 * function started; the figure is the time from the kill to the function's start on the other
 * worker (reported over IPC, the same for every system). For taskmesh also the time until the
 * public record shows the task RUNNING again with a newer attempt on the other worker.
 */
const { V } = require('../systems');
const { makeJobs, sleep, until } = require('../systems/base');
const { limitTarget } = require('../lib/report');
const { wallNow } = require('../lib/child-report');

const SYSTEMS = [V.taskmesh, V.bullmq, V.bullmqTuned, V.bee, V.beeTuned];
const FIGURES = [
  { key: 'restartMs', label: 'kill → running elsewhere ms', better: 'lower', fmt: 'int' },
  { key: 'recordMs', label: 'kill → record RUNNING elsewhere ms', better: 'lower', fmt: 'int' },
];
const LIMIT_MS = 150000; // BullMQ with defaults needed up to ~90 s here

async function trial(ctx, variant) {
  const cluster = await variant.system.start(ctx, { workers: [10, 10], options: variant.options });
  try {
    const [job] = makeJobs(1, 'sleep', { r: 1, ms: 10000 });
    await cluster.submit([job]);
    const first = await until(
      () => cluster.starts.get(job.id)?.[0],
      15000,
      'the task to start',
      5,
      () => cluster.checkAlive(),
    );
    const victim = cluster.workers.find((w) => w.pid === first.pid);
    await sleep(Math.max(0, first.ts + 1000 - wallNow()));
    const killAt = wallNow();
    const killed = cluster.killWorker(victim);
    let recordAt = null;
    const watchRecord =
      cluster.record &&
      (async () => {
        // The record's own view: RUNNING, a newer attempt, and not the killed worker.
        while (wallNow() - killAt < LIMIT_MS) {
          const rec = await cluster.record(job.id);
          if (rec.state === 'RUNNING' && Number(rec.attempts) >= 2 && rec.worker && rec.worker !== victim.workerId) {
            recordAt = wallNow();
            return;
          }
          await sleep(10);
        }
      })();
    await killed;
    const again = await until(
      () => cluster.starts.get(job.id)?.find((s) => s.pid !== first.pid),
      LIMIT_MS,
      'the task to run on the other worker',
      5,
      () => cluster.checkAlive(),
    );
    if (watchRecord) await Promise.race([watchRecord, sleep(5000)]);
    const out = { restartMs: again.ts - killAt };
    if (recordAt) out.recordMs = recordAt - killAt;
    return out;
  } finally {
    await cluster.stop();
  }
}

module.exports = {
  id: 'W3',
  title: 'failover after SIGKILL of the busy worker',
  cases() {
    return [
      {
        id: 'sigkill',
        title: 'SIGKILL 1 s into a 10 s task, 2 workers (BullMQ and Bee-Queue with defaults and tuned)',
        systems: SYSTEMS,
        figures: FIGURES,
        trial,
      },
    ];
  },
  targets(results) {
    return [limitTarget(results, 'sigkill', 'restartMs', 1000, 'W3 kill → running elsewhere ≤ 1,000 ms (defaults)')];
  },
};
