'use strict';
// One BullMQ worker process. Settings come as JSON in argv[2]:
// { port, queue, concurrency, lockDuration?, stalledInterval? } (absent = BullMQ's defaults).
const { Worker } = require('bullmq');
const report = require('../lib/child-report');

const cfg = JSON.parse(process.argv[2]);
const opts = { connection: { host: '127.0.0.1', port: cfg.port, maxRetriesPerRequest: null }, concurrency: cfg.concurrency };
if (cfg.lockDuration) opts.lockDuration = cfg.lockDuration;
if (cfg.stalledInterval) opts.stalledInterval = cfg.stalledInterval;

// W5: updateProgress as fast as BullMQ allows (every call pipelined, then awaited together).
const progress = async (job) => {
  await new Promise((r) => setTimeout(r, job.data.wait));
  const n = job.data.n;
  const calls = [];
  for (let i = 1; i <= n; i++) calls.push(job.updateProgress({ i, n, t: report.wallNow() }));
  await Promise.all(calls);
  return { n };
};
const worker = new Worker(cfg.queue, (job) => (job.name === 'progress' ? progress(job) : report.run(job.name, job.data, job.id)), opts);
worker.on('completed', (job) => report.completed(job.id, job.data && job.data.r));
worker.on('error', (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));
worker.waitUntilReady().then(
  () => process.send({ t: 'ready', pid: process.pid }),
  (err) => {
    process.stderr.write(`bullmq worker failed: ${err.stack}\n`);
    process.exit(1);
  },
);
