'use strict';
/**
 * Bee-Queue: worker processes (bench/children/bee-worker.js) and a producer in the bench process
 * using `saveAll` (pipelined, 1,000 jobs a call). Completion is counted with SCARD of the queue's
 * `succeeded` set every 20 ms. Bee-Queue keeps no finish time in Redis, so a job's END time is
 * when its worker saw the `succeeded` write acknowledged (reported over IPC).
 */
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const procs = require('../lib/procs');
const { ClusterBase, sleep, waitReady } = require('./base');

const CHILD = path.join(__dirname, '..', 'children', 'bee-worker.js');

class BeeCluster extends ClusterBase {
  constructor(ctx, queueName) {
    super('bee-queue', ctx);
    const Queue = require('bee-queue');
    this.queueName = queueName;
    this.queue = new Queue(queueName, { redis: { host: '127.0.0.1', port: ctx.redis.port }, isWorker: false, getEvents: false });
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
      const errors = await this.queue.saveAll(chunk.map((j) => this.queue.createJob({ kind: j.kind, ...j.data }).setId(j.id)));
      if (errors.size) throw new Error(`bee-queue saveAll: ${[...errors.values()][0].message}`);
    }
    return times;
  }

  async count() {
    this.pollCommands += 2;
    const [[, done], [, failed]] = await this.redis.pipeline().scard(`bq:${this.queueName}:succeeded`).scard(`bq:${this.queueName}:failed`).exec();
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
    await sleep(60); // the workers' last IPC batch
    const out = new Map();
    for (const id of ids) if (this.completions.has(id)) out.set(id, this.completions.get(id));
    return out;
  }

  async closeClients() {
    await Promise.race([this.queue.close().catch(() => undefined), sleep(2000)]);
    this.redis.disconnect();
  }
}

/** `options`: { stallInterval } (absent = Bee-Queue's default, 5000 ms). */
async function start(ctx, { workers, options = {}, warmup = true }) {
  const queueName = `bench-${randomBytes(4).toString('hex')}`;
  const cluster = new BeeCluster(ctx, queueName);
  const children = workers.map((concurrency, i) =>
    cluster.adopt(
      procs.startNode(`bee-worker-${i + 1}`, CHILD, [JSON.stringify({ port: ctx.redis.port, queue: queueName, concurrency, ...options })], { ipc: true }),
    ),
  );
  await waitReady(children, 20000, cluster);
  if (warmup) await cluster.warmup();
  return cluster;
}

module.exports = { name: 'bee-queue', start };
