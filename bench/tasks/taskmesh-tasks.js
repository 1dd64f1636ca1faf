'use strict';
// Task module for `taskmesh-worker --tasks bench/tasks/taskmesh-tasks.js`: the bench's `noop` and
// `sleep` tasks, reporting to the bench over IPC exactly like the peers' worker processes. It is
// the `(worker) => void` form so it can also hear the worker's `task` events: a `state` END event
// comes after the END write was recorded, like BullMQ's `completed` and Bee-Queue's `succeeded`.
const { sleep } = require('@taskmesh/worker');
const report = require('../lib/child-report');

module.exports = (worker) => {
  worker.addTask('noop', (config, ctx) => report.run('noop', config, ctx.id));
  worker.addTask('sleep', (config, ctx) => report.run('sleep', config, ctx.id, sleep, ctx.signal));
  // W5: ctx.progress as fast as it can, each event carrying its sub-ms send time.
  worker.addTask('progress', async (config, ctx) => {
    // Time for the watcher to subscribe (it finds the task's worker from the record).
    await sleep(config.wait, ctx.signal);
    const n = config.n;
    for (let i = 1; i <= n; i++) ctx.progress(i, n, String(report.wallNow()));
    return { n };
  });
  worker.on('task', (e) => {
    if (e.type === 'state' && e.state === 'END') report.completed(e.task);
  });
};
