'use strict';
/** The systems and settings a workload can run, each one column of the tables. */
const taskmesh = require('./taskmesh');
const bullmq = require('./bullmq');
const beeQueue = require('./bee-queue');

const V = {
  taskmesh: { key: 'taskmesh', label: 'taskmesh', system: taskmesh, peer: false },
  bullmq: { key: 'bullmq', label: 'BullMQ', system: bullmq, peer: true },
  bee: { key: 'bee-queue', label: 'Bee-Queue', system: beeQueue, peer: true },
  /** BullMQ tuned for fast stall detection (FACTS.md: 4 s lock -> about 3 s). */
  bullmqTuned: { key: 'bullmq-tuned', label: 'BullMQ lock 4 s', system: bullmq, peer: true, options: { lockDuration: 4000, stalledInterval: 1000 } },
  beeTuned: { key: 'bee-queue-tuned', label: 'Bee-Queue stall 1 s', system: beeQueue, peer: true, options: { stallInterval: 1000 } },
};

module.exports = { V, taskmesh, bullmq, beeQueue };
