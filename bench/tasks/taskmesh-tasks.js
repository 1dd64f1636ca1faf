'use strict';
// Task module for `taskmesh-worker --tasks bench/tasks/taskmesh-tasks.js`: the bench's `noop` and
// `sleep` tasks, reporting starts to the bench over IPC exactly like the peers' worker processes.
const { sleep } = require('@taskmesh/worker');
const report = require('../lib/child-report');

module.exports = {
  noop: (config, ctx) => report.run('noop', config, ctx.id),
  sleep: (config, ctx) => report.run('sleep', config, ctx.id, sleep, ctx.signal),
};
