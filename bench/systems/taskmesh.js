'use strict';
/**
 * taskmesh as a user runs it: the real bins (one distributor, N workers) over real mutual TLS,
 * configured by JSON files, fed through the public intake (LPUSH of JSON envelopes onto
 * `<prefix>new-task`). Completion is read from the public record `<prefix>task:<id>` only.
 *
 * Counting completions: the records are checked oldest first (tasks run roughly in order). The
 * oldest pending id is read alone (one HGET per 20 ms while it is not END); once it is, the next
 * 256 are read in one pipeline and every END one is dropped. That costs about one HGET per task
 * plus at most 50 per second, far below what the tasks themselves cost Redis.
 */
const fs = require('node:fs');
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const procs = require('../lib/procs');
const { ClusterBase, until, sleep, waitReady } = require('./base');

const ROOT = path.resolve(__dirname, '..', '..');
const DISTRIBUTOR_BIN = path.join(ROOT, 'packages/distributor/bin/taskmesh-distributor.js');
const WORKER_BIN = path.join(ROOT, 'packages/worker/bin/taskmesh-worker.js');
const TASKS = path.join(ROOT, 'bench/tasks/taskmesh-tasks.js');

const TERMINAL = new Set(['END', 'FAILED', 'CANCELLED']);

class TaskmeshCluster extends ClusterBase {
  constructor(ctx, prefix) {
    super('taskmesh', ctx);
    this.prefix = prefix;
    this.redis = ctx.redis.client();
    this.redis.on('error', () => undefined);
    this.failed = 0;
  }

  key(id) {
    return `${this.prefix}task:${id}`;
  }

  async submit(jobs) {
    const times = new Array(jobs.length);
    for (let i = 0; i < jobs.length; i += 1000) {
      const chunk = jobs.slice(i, i + 1000);
      const envelopes = chunk.map((j) => JSON.stringify({ id: j.id, name: j.kind, config: j.data }));
      const now = Date.now();
      for (let k = 0; k < chunk.length; k++) times[i + k] = now;
      await this.redis.lpush(`${this.prefix}new-task`, ...envelopes);
    }
    return times;
  }

  async waitDone(ids, timeoutMs) {
    let pending = ids.slice();
    const deadline = Date.now() + timeoutMs;
    while (pending.length > 0) {
      const head = await this.redis.hget(this.key(pending[0]), 'state');
      this.pollCommands++;
      if (!TERMINAL.has(head)) {
        this.checkAlive();
        if (Date.now() > deadline) {
          const rec = await this.redis.hgetall(this.key(pending[0]));
          const intake = await this.redis.llen(`${this.prefix}new-task`);
          const brief = ['state', 'attempts', 'epoch', 'worker', 'created_at', 'started_at', 'updated_at'].map((k) => `${k}=${rec[k] ?? ''}`).join(' ');
          throw new Error(
            `timed out after ${timeoutMs} ms: ${ids.length - pending.length} of ${ids.length} done; oldest pending ${pending[0]}: ${brief || 'no record'}; new-task length ${intake}`,
          );
        }
        await sleep(20);
        continue;
      }
      if (head !== 'END') this.failed++;
      const window = pending.slice(1, 257);
      const pl = this.redis.pipeline();
      for (const id of window) pl.hget(this.key(id), 'state');
      this.pollCommands += window.length;
      const res = window.length ? await pl.exec() : [];
      const still = [];
      res.forEach(([, st], i) => {
        if (!TERMINAL.has(st)) still.push(window[i]);
        else if (st !== 'END') this.failed++;
      });
      pending = still.concat(pending.slice(1 + window.length));
    }
    return Date.now();
  }

  /** When each task's END was recorded (the record's `ended_at`). */
  async endTimes(ids) {
    const out = new Map();
    for (let i = 0; i < ids.length; i += 1000) {
      const pl = this.redis.pipeline();
      const chunk = ids.slice(i, i + 1000);
      for (const id of chunk) pl.hget(this.key(id), 'ended_at');
      const res = await pl.exec();
      res.forEach(([, v], k) => v && out.set(chunk[k], Number(v)));
    }
    return out;
  }

  async record(id) {
    return this.redis.hgetall(this.key(id));
  }

  /**
   * W5: calls `onEvent(sentAt)` for every progress event of task `id`, received by a watcher
   * (the real library, its own certificate, straight from the worker). Returns a stop function.
   */
  async onProgress(id, onEvent) {
    const { createWatcher } = require('@taskmesh/watcher');
    const { loadConfig } = require('@taskmesh/common');
    const file = path.join(this.dir, 'watcher.json');
    fs.writeFileSync(file, JSON.stringify(this.watcherConfig, null, 2));
    const watcher = createWatcher(loadConfig('watcher', file));
    const unsubscribe = watcher.subscribe(id, (e) => {
      if (e.type === 'progress') onEvent(Number(e.message));
    });
    return async () => {
      unsubscribe();
      await watcher.close();
    };
  }

  async closeClients() {
    this.redis.disconnect();
  }

  async stop() {
    // A profiled worker writes its profile only when it exits by itself: SIGTERM is a graceful stop.
    if (process.env.BENCH_CPU_PROF) await Promise.all([...this.workers, this.others.distributor].map((c) => procs.stop(c, 'SIGTERM', 5000)));
    await super.stop();
  }
}

let certsDir = null;

/** Dev certificates, made once per bench run with the project's own CLI. */
function ensureCerts(ctx) {
  if (certsDir) return certsDir;
  const dir = path.join(ctx.dir, 'certs');
  const { execFileSync } = require('node:child_process');
  execFileSync(process.execPath, [path.join(ROOT, 'packages/common/bin/taskmesh.js'), 'certs', dir, '--names', 'distributor,worker,watcher'], {
    env: procs.cleanEnv(),
    stdio: 'pipe',
  });
  certsDir = dir;
  return dir;
}

/**
 * Starts one distributor and one worker process per entry of `workers` (its concurrency).
 * `seed(redis, prefix)` may fill Redis before anything starts (W6); `prefix` replaces the random
 * one (bench/cluster.js gives hash-tag prefixes).
 */
async function start(ctx, { workers, seed, warmup = true, prefix: fixedPrefix }) {
  const certs = ensureCerts(ctx);
  const prefix = fixedPrefix ?? `bench${randomBytes(4).toString('hex')}:`;
  const cluster = new TaskmeshCluster(ctx, prefix);
  if (seed) await seed(cluster.redis, prefix);
  const dir = fs.mkdtempSync(path.join(ctx.dir, 'taskmesh-'));
  const shareKey = randomBytes(16).toString('hex');
  const dport = await procs.freePort();
  // ctx.redis.taskmeshRedis: other `redis.*` settings (bench/cluster.js: `redis.cluster` seeds).
  const redis = { ...(ctx.redis.taskmeshRedis ?? { url: ctx.redis.url }), prefix };
  const tls = (role) => ({ key: path.join(certs, `${role}-key.pem`), cert: path.join(certs, `${role}.pem`), ca: path.join(certs, 'ca.pem') });
  const dcfg = { id: 'bench-distributor', share_key: shareKey, ...tls('distributor'), redis, host: '127.0.0.1', port: dport };
  fs.writeFileSync(path.join(dir, 'distributor.json'), JSON.stringify(dcfg, null, 2));
  cluster.dir = dir;
  cluster.watcherConfig = { share_key: shareKey, ...tls('watcher'), redis };
  const env = procs.cleanEnv({ TASKMESH_LOG_LEVEL: 'warn' });
  // --cpu-prof DIR (bench/run.js): V8 profiles of the distributor and the workers, written when they exit (SIGTERM in stop()).
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  cluster.others.distributor = procs.start(
    'taskmesh-distributor',
    process.execPath,
    [...prof, DISTRIBUTOR_BIN, '--config', path.join(dir, 'distributor.json')],
    {
      cwd: ROOT,
      env,
    },
  );
  await until(
    () => cluster.redis.sismember(`${prefix}distributors`, dcfg.id),
    20000,
    'the distributor to register',
    50,
    () => cluster.checkAlive(),
  );

  const children = workers.map((concurrency, i) => {
    const wid = `bench-worker-${i + 1}`;
    const wcfg = { id: wid, share_key: shareKey, ...tls('worker'), redis, host: '127.0.0.1', port: 0, distributors: [['127.0.0.1', dport]], concurrency };
    const file = path.join(dir, `worker-${i + 1}.json`);
    fs.writeFileSync(file, JSON.stringify(wcfg, null, 2));
    const child = cluster.adopt(
      procs.start(
        `taskmesh-worker-${i + 1}`,
        process.execPath,
        [...prof, WORKER_BIN, '--config', file, '--tasks', TASKS, '--concurrency', String(concurrency)],
        { cwd: ROOT, env, ipc: true },
      ),
    );
    child.ready = false;
    child.workerId = wid;
    return child;
  });
  await until(
    async () => {
      const ids = await cluster.redis.smembers(`${prefix}workers`);
      for (const c of children) c.ready = ids.includes(c.workerId);
      return children.every((c) => c.ready);
    },
    20000,
    'the workers to register',
    50,
    () => cluster.checkAlive(),
  );
  await waitReady(children, 1000, cluster);
  if (warmup) await cluster.warmup();
  return cluster;
}

module.exports = { name: 'taskmesh', start, ensureCerts, ROOT };
