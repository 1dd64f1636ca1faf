'use strict';
/**
 * What the three systems share: worker processes that report over IPC (bench/lib/child-report.js),
 * a record of every reported start, and waiting helpers. Each system adds how to start its
 * processes, submit, and tell from Redis that tasks completed.
 */
const procs = require('../lib/procs');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` (sync or async) every `everyMs` until it returns a truthy value or time runs out. */
async function until(fn, timeoutMs, what, everyMs = 10, check) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (check) check();
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

class ClusterBase {
  constructor(system, ctx) {
    this.system = system;
    this.ctx = ctx;
    this.workers = [];
    /** Other processes to measure by role (e.g. { distributor: child }). */
    this.others = {};
    this.startCount = 0;
    this.finishCount = 0;
    /** id -> [{ ts, pid }] every start of the task's function. */
    this.starts = new Map();
    this.completions = new Map();
    this.startsByPid = new Map();
    this.listeners = new Set();
    /** Commands the bench itself sent to find out what completed (subtracted from Redis counts). */
    this.pollCommands = 0;
  }

  /** Adopts a worker child: its IPC reports feed the counters. */
  adopt(child) {
    this.workers.push(child);
    child.on('message', (m) => {
      if (!m || typeof m !== 'object') return;
      if (m.t === 'ready') child.ready = true;
      if (m.t !== 'rep') return;
      this.startCount += m.sc || 0;
      this.finishCount += m.fc || 0;
      this.startsByPid.set(child.pid, (this.startsByPid.get(child.pid) || 0) + (m.sc || 0));
      for (const [id, ts] of m.s || []) {
        let a = this.starts.get(id);
        if (!a) this.starts.set(id, (a = []));
        a.push({ ts, pid: child.pid });
      }
      for (const [id, ts] of m.c || []) if (!this.completions.has(id)) this.completions.set(id, ts);
      for (const fn of this.listeners) fn(m, child);
    });
    return child;
  }

  /** Throws with the child's log tail if any process of this cluster died unexpectedly. */
  checkAlive() {
    for (const c of [...this.workers, ...Object.values(this.others)]) {
      if (c.expectedDead) continue;
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(`${c.label} exited (${c.exitCode ?? c.signalCode}); log tail:\n${procs.tail(c)}`);
      }
    }
  }

  resetCounters() {
    this.startCount = 0;
    this.finishCount = 0;
    this.starts.clear();
    this.completions.clear();
    this.startsByPid.clear();
  }

  /** Runs `n` no-op tasks until each worker process has run at least one (JIT and connections warm). */
  async warmup(n = 200) {
    for (let attempt = 0; attempt < 5; attempt++) {
      const jobs = makeJobs(n, 'noop', { r: 1 });
      await this.submit(jobs);
      await this.waitDone(
        jobs.map((j) => j.id),
        30000,
      );
      await sleep(50); // the last IPC batch
      if (this.workers.every((w) => (this.startsByPid.get(w.pid) || 0) > 0)) break;
    }
    this.resetCounters();
  }

  /** CPU s and RSS bytes of each measured process, keyed by role. */
  procStats() {
    const out = { workers: this.workers.map((w) => procs.procStat(w.pid)) };
    for (const [role, c] of Object.entries(this.others)) out[role] = procs.procStat(c.pid);
    return out;
  }

  async killWorker(child) {
    child.expectedDead = true;
    await procs.stop(child, 'SIGKILL');
  }

  async stop() {
    for (const c of [...this.workers, ...Object.values(this.others)]) c.expectedDead = true;
    await Promise.all([...this.workers, ...Object.values(this.others)].map((c) => procs.stop(c, 'SIGKILL')));
    await this.closeClients?.();
  }
}

const { randomUUID } = require('node:crypto');

/** `n` jobs of one kind with the same payload: { id, kind, data }. */
function makeJobs(n, kind, data) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = { id: randomUUID(), kind, data };
  return out;
}

async function waitReady(children, timeoutMs, cluster) {
  await until(
    () => children.every((c) => c.ready),
    timeoutMs,
    'worker processes to be ready',
    20,
    () => cluster.checkAlive(),
  );
}

module.exports = { ClusterBase, makeJobs, until, sleep, waitReady };
