'use strict';
// One Bee-Queue worker process. Settings come as JSON in argv[2]:
// { port, queue, concurrency, stallInterval? } (absent = Bee-Queue's default, 5000 ms). It runs
// checkStalledJobs every stallInterval, as Bee-Queue's README shows (Bee-Queue checks nothing
// unless asked).
const Queue = require('bee-queue');
const report = require('../lib/child-report');

const cfg = JSON.parse(process.argv[2]);
const settings = { redis: { host: '127.0.0.1', port: cfg.port }, isWorker: true };
if (cfg.stallInterval) settings.stallInterval = cfg.stallInterval;
const queue = new Queue(cfg.queue, settings);
const stallInterval = queue.settings.stallInterval;

queue.on('error', (err) => process.stderr.write(`bee-queue error: ${err.message}\n`));
queue.on('succeeded', (job) => report.completed(job.id, job.data && job.data.r));
queue.process(cfg.concurrency, (job) => report.run(job.data.kind, job.data, job.id));
queue.checkStalledJobs(stallInterval, (err) => {
  if (err) process.stderr.write(`bee-queue stalled check: ${err.message}\n`);
});
queue.ready().then(
  () => process.send({ t: 'ready', pid: process.pid }),
  (err) => {
    process.stderr.write(`bee-queue worker failed: ${err.stack}\n`);
    process.exit(1);
  },
);
