'use strict';
/**
 * BullMQ: worker processes (bench/children/bullmq-worker.js) and a producer in the bench process
 * using `addBulk` (one pipelined call per 1,000 jobs). Completion is counted with ZCARD of the
 * queue's `completed` set every 20 ms; a job's END time is its `finishedOn`.
 */
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const procs = require('../lib/procs');
const { ClusterBase, sleep, waitReady } = require('./base');

const CHILD = path.join(__dirname, '..', 'children', 'bullmq-worker.js');

class BullCluster extends ClusterBase {
  constructor(ctx, queueName) {
    super('bullmq', ctx);
    const { Queue } = require('bullmq');
    this.queueName = queueName;
    this.queue = new Queue(queueName, { connection: { host: '127.0.0.1', port: ctx.redis.port, maxRetriesPerRequest: null } });
    this.queue.on('error', () => undefined);
    this.redis = ctx.redis.client();
    this.redis.on('error', () => undefined);
    this.doneBase = 0;
    this.failed = 0;
  }

  async submit(jobs) {
    const times = new Array(jobs.length);
    for (let i = 0; i < jobs.length; i += 1000) {
      const chunk = jobs.slice(i, i + 1000);
      const now = Date.now();
      for (let k = 0; k < chunk.length; k++) times[i + k] = now;
      await this.queue.addBulk(chunk.map((j) => ({ name: j.kind, data: j.data, opts: { jobId: j.id } })));
    }
    return times;
  }

  async count() {
    this.pollCommands += 2;
    const [[, done], [, failed]] = await this.redis.pipeline().zcard(`bull:${this.queueName}:completed`).zcard(`bull:${this.queueName}:failed`).exec();
    return { done, failed };
  }

  async waitDone(ids, timeoutMs) {
    const target = this.doneBase + ids.length;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { done, failed } = await this.count();
      if (done + failed >= target) {
        this.failed = failed;
        this.doneBase = done + failed;
        return Date.now();
      }
      this.checkAlive();
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${done + failed - this.doneBase} of ${ids.length} done`);
      await sleep(20);
    }
  }

  async endTimes(ids) {
    const out = new Map();
    for (let i = 0; i < ids.length; i += 1000) {
      const chunk = ids.slice(i, i + 1000);
      const pl = this.redis.pipeline();
      for (const id of chunk) pl.hget(`bull:${this.queueName}:${id}`, 'finishedOn');
      const res = await pl.exec();
      res.forEach(([, v], k) => v && out.set(chunk[k], Number(v)));
    }
    return out;
  }

  /** W5: calls `onEvent(sentAt)` for every progress event of job `id`, heard through QueueEvents. */
  async onProgress(id, onEvent) {
    const { QueueEvents } = require('bullmq');
    const events = new QueueEvents(this.queueName, { connection: { host: '127.0.0.1', port: this.ctx.redis.port, maxRetriesPerRequest: null } });
    events.on('error', () => undefined);
    events.on('progress', ({ jobId, data }) => {
      if (jobId === id && data && typeof data === 'object') onEvent(data.t);
    });
    await events.waitUntilReady();
    return async () => {
      await Promise.race([events.close().catch(() => undefined), sleep(2000)]);
    };
  }

  async closeClients() {
    await Promise.race([this.queue.close().catch(() => undefined), sleep(2000)]);
    this.redis.disconnect();
  }
}

/** `options`: { lockDuration, stalledInterval } (absent = BullMQ defaults). */
async function start(ctx, { workers, options = {}, warmup = true }) {
  const queueName = `bench-${randomBytes(4).toString('hex')}`;
  const cluster = new BullCluster(ctx, queueName);
  const children = workers.map((concurrency, i) =>
    cluster.adopt(
      procs.startNode(`bullmq-worker-${i + 1}`, CHILD, [JSON.stringify({ port: ctx.redis.port, queue: queueName, concurrency, ...options })], { ipc: true }),
    ),
  );
  await waitReady(children, 20000, cluster);
  if (warmup) await cluster.warmup();
  return cluster;
}

module.exports = { name: 'bullmq', start };
