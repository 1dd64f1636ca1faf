'use strict';
/**
 * Worker-side reporting over the IPC channel, the same for taskmesh (loaded inside the real
 * taskmesh-worker through the bench task module) and for the peers' worker processes.
 * What a task reports is chosen by its payload's `r`: 0 nothing, 1 each start and finish with its
 * id and time, 2 counts only. Messages are batched every 20 ms so reporting stays cheap.
 */
const { performance } = require('node:perf_hooks');
/** Sub-millisecond wall-clock time, comparable between processes on one machine. */
const wallNow = () => performance.timeOrigin + performance.now();

let starts = [];
let finishes = [];
let completions = [];
let startCount = 0;
let finishCount = 0;
let timer = null;

function flush() {
  timer = null;
  if (typeof process.send !== 'function' || !process.connected) return;
  const msg = { t: 'rep', pid: process.pid, sc: startCount, fc: finishCount };
  if (starts.length) msg.s = starts;
  if (finishes.length) msg.f = finishes;
  if (completions.length) msg.c = completions;
  starts = [];
  finishes = [];
  completions = [];
  startCount = 0;
  finishCount = 0;
  process.send(msg);
}

function schedule() {
  if (!timer) {
    timer = setTimeout(flush, 20);
    timer.unref();
  }
}

function start(id, r) {
  if (!r) return;
  if (r === 1) {
    starts.push([String(id), wallNow()]);
    tracked.add(String(id));
  }
  startCount++;
  schedule();
}

function finish(id, r) {
  if (!r) return;
  if (r === 1) finishes.push([String(id), wallNow()]);
  finishCount++;
  schedule();
}

/** Ids whose start was reported one by one, so their completion is reported too. */
const tracked = new Set();

/**
 * A completion the system confirmed after its Redis write: BullMQ's `completed` and Bee-Queue's
 * `succeeded` events, taskmesh's worker `task` event with state END. `r` may be unknown (taskmesh).
 */
function completed(id, r) {
  const key = String(id);
  if (!tracked.delete(key) && r !== 1) return;
  completions.push([key, wallNow()]);
  schedule();
}

function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The bench's two tasks, the same body in every system: `noop` returns at once, `sleep` waits
 * data.ms. `sleepFn` lets taskmesh pass its own cancellable sleep.
 */
async function run(kind, data, id, sleepFn = delay, signal) {
  const r = data && data.r;
  start(id, r);
  if (kind === 'sleep') await sleepFn(Number(data.ms) || 0, signal);
  finish(id, r);
  return 1;
}

process.on('disconnect', () => process.exit(0));

module.exports = { start, finish, completed, run, flush, wallNow };
