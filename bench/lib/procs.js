'use strict';
/**
 * Every process the bench starts goes through here: it is registered by pid, its output goes to a
 * log file, and `killAll` ends each one by its own pid (never by name) on exit, on SIGINT/SIGTERM,
 * and when the bench's own time limit runs out.
 */
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');

const live = new Map(); // pid -> { child, name }
let logDir = null;
let seq = 0;

function setLogDir(dir) {
  logDir = dir;
}

/** Env for children: without TASKMESH_* (a stray override would change what we measure). */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKMESH_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * Starts `cmd args` (node scripts via process.execPath) with an IPC channel when `ipc` is set.
 * Returns the child with `.logFile`, `.exited` (a promise of {code, signal}) and `.label`.
 */
function start(label, cmd, args, opts = {}) {
  const logFile = logDir ? path.join(logDir, `${String(++seq).padStart(3, '0')}-${label.replace(/[^A-Za-z0-9_.-]/g, '_')}.log`) : null;
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const stdio = ['ignore', out, out];
  if (opts.ipc) stdio.push('ipc');
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? cleanEnv(), stdio, detached: false });
  if (typeof out === 'number') fs.closeSync(out);
  child.label = label;
  child.logFile = logFile;
  child.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child.pid);
      resolve({ code, signal });
    });
    child.once('error', (err) => {
      live.delete(child.pid);
      resolve({ code: -1, signal: null, error: err });
    });
  });
  if (child.pid) live.set(child.pid, { child, label });
  return child;
}

function startNode(label, script, args = [], opts = {}) {
  return start(label, process.execPath, [script, ...args], opts);
}

/** Ends one child we started: SIGKILL by default (the bench throws its Redis state away). */
async function stop(child, signal = 'SIGKILL', graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  if (!live.has(child.pid)) return;
  try {
    process.kill(child.pid, signal);
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      if (live.has(child.pid)) process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await child.exited;
  clearTimeout(t);
}

/** Synchronous: usable from process 'exit'. */
function killAllSync() {
  for (const [pid] of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  live.clear();
}

/** Stops every live child except the pids in `keep` (the bench's redis-server). */
async function stopAll(keep = new Set()) {
  await Promise.all([...live.values()].filter(({ child }) => !keep.has(child.pid)).map(({ child }) => stop(child)));
}

function liveCount() {
  return live.size;
}

/** The last lines of a child's log, to explain a failure. */
function tail(child, lines = 15) {
  if (!child?.logFile) return '';
  try {
    return fs.readFileSync(child.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* 100 on Linux */
}

/** CPU seconds (user + system) and RSS bytes of a process, from /proc. null when it is gone. */
function procStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 3 (state) is f[0]; utime is field 14 -> f[11], stime 15 -> f[12].
    const cpuS = (Number(f[11]) + Number(f[12])) / clkTck;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return { cpuS, rssBytes: m ? Number(m[1]) * 1024 : 0 };
  } catch {
    return null;
  }
}

/** A free loopback TCP port (bound then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

module.exports = { setLogDir, cleanEnv, start, startNode, stop, stopAll, killAllSync, liveCount, tail, procStat, freePort };
