#!/usr/bin/env node
// The demo: dev certificates, one distributor and two workers (the real bins) on the machine's
// Redis, a watcher (`taskmesh-watch --all`) printing live progress straight from the workers, a
// handful of example tasks submitted and followed to the end, then a clean shutdown. A dashboard
// (`taskmesh dashboard`) runs beside them; with `--keep` the mesh stays up after the examples,
// with a new task every few seconds, until Ctrl-C, so the page can be watched moving.
'use strict';
const { spawn } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { createServer } = require('node:net');
const { randomBytes } = require('node:crypto');
const { Redis } = require('ioredis');
const { TaskClient, loadConfig, generateDevCerts } = require('@taskmesh/common');

const ROOT = join(__dirname, '..');
const REDIS_URL = process.env.TASKMESH_REDIS_URL || 'redis://127.0.0.1:6379';
// The examples' prefix (config/*.json), so `pnpm exec taskmesh-watch --config config/watcher.json
// --all` in another terminal sees the demo's tasks; TASKMESH_REDIS_PREFIX picks another one.
const PREFIX = process.env.TASKMESH_REDIS_PREFIX || 'taskmesh:';
const RUN = randomBytes(3).toString('hex');
const bin = (pkg, name) => join(ROOT, 'packages', pkg, 'bin', name);
const say = (line) => process.stdout.write(`${line}\n`);
const KEEP = process.argv.includes('--keep');

async function redisReachable() {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
    return r;
  } catch {
    r.disconnect();
    return null;
  }
}

/** `preferred` when it is free, otherwise any free port. */
function freePort(preferred = 0) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(freePort()));
    s.listen(preferred, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Children still running: if the demo itself dies, they do not outlive it. */
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function start(name, args, env, stdout = 'ignore') {
  // A process group of its own: a terminal's Ctrl-C reaches only the demo, which then stops each
  // process with one SIGTERM (a second signal makes a bin exit at once, with 1).
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', stdout, 'pipe'], detached: true });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return { name, child, exited, log: () => log };
}

async function main() {
  // A signal at any point stops the demo through its own shutdown (the finally below): the bins
  // are in process groups of their own, so nothing else would stop them.
  let signalled = null;
  let onSignal = () => undefined;
  const interrupted = new Promise((_, reject) => {
    onSignal = () => reject(new Error('interrupted'));
  });
  interrupted.catch(() => undefined);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      // A second signal: at once (the exit handler kills the bins).
      if (signalled) process.exit(130);
      signalled = sig;
      onSignal();
    });
  }
  const redis = await redisReachable();
  if (!redis) {
    process.stderr.write(
      `Redis is not reachable at ${REDIS_URL}: start one with \`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no\` (or set TASKMESH_REDIS_URL)\n`,
    );
    process.exit(1);
  }
  if (!existsSync(join(ROOT, 'certs', 'dev', 'ca.pem'))) {
    say('creating dev certificates in certs/dev');
    await generateDevCerts(join(ROOT, 'certs', 'dev'));
  }
  const port = await freePort();
  // Prometheus /metrics of each daemon, on the conventional ports when they are free.
  const metricsPorts = [await freePort(9464), await freePort(9465), await freePort(9466)];
  const env = { TASKMESH_REDIS_URL: REDIS_URL, TASKMESH_REDIS_PREFIX: PREFIX, TASKMESH_LOG_LEVEL: process.env.TASKMESH_LOG_LEVEL || 'warn' };
  say(`starting a distributor on port ${port} and two workers (Redis ${REDIS_URL}, prefix ${PREFIX})`);
  const procs = [
    start('distributor', [bin('distributor', 'taskmesh-distributor.js'), '--config', 'config/distributor.json'], {
      ...env,
      TASKMESH_ID: `demo-distributor-${RUN}`,
      TASKMESH_PORT: String(port),
      TASKMESH_METRICS_PORT: String(metricsPorts[0]),
      TASKMESH_LOG_LEVEL: 'info',
    }),
    ...[1, 2].map((n) =>
      start(`worker-${n}`, [bin('worker', 'taskmesh-worker.js'), '--config', 'config/worker.json', '--tasks', 'examples/tasks.js', '--concurrency', '4'], {
        ...env,
        TASKMESH_ID: `demo-worker-${n}-${RUN}`,
        TASKMESH_DISTRIBUTORS: JSON.stringify([['localhost', port]]),
        TASKMESH_METRICS_PORT: String(metricsPorts[n]),
      }),
    ),
  ];
  const client = new TaskClient(loadConfig('cli', join(ROOT, 'config', 'watcher.json'), { redis: { url: REDIS_URL, prefix: PREFIX } }));
  let failed; // set by the try or the catch below
  const ids = [];
  try {
    await Promise.race([
      (async () => {
        const deadline = Date.now() + 15000;
        while ((procs[0].log().match(/worker connected/g) || []).length < 2) {
          if (Date.now() > deadline || procs.some((p) => p.child.exitCode !== null)) throw new Error('the distributor did not see both workers connect');
          await new Promise((r) => setTimeout(r, 50));
        }
        // The watcher connects to every worker itself (mutual TLS, its own certificate) and prints
        // each task's events as they happen: bars on a terminal, plain lines otherwise.
        say('starting taskmesh-watch --all --follow (live events straight from the workers)');
        const watch = start('taskmesh-watch', [bin('watcher', 'taskmesh-watch.js'), '--config', 'config/watcher.json', '--all', '--follow'], env, 'inherit');
        procs.push(watch);
        while ((watch.log().match(/watching worker/g) || []).length < 2) {
          if (Date.now() > deadline + 10000 || watch.child.exitCode !== null) throw new Error(`the watcher did not reach both workers: ${watch.log()}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        // The web dashboard on config/dashboard.json's port (7070) when it is free, else any free one.
        const dashPort = process.env.TASKMESH_DASHBOARD_PORT || String(await freePort(7070));
        const dash = start('dashboard', [bin('common', 'taskmesh.js'), 'dashboard', '--config', 'config/dashboard.json', '--port', dashPort], env, 'pipe');
        procs.push(dash);
        let dashOut = '';
        dash.child.stdout.on('data', (d) => (dashOut += d));
        while (!/open (\S+)/.test(dashOut)) {
          if (Date.now() > deadline + 10000 || dash.child.exitCode !== null) throw new Error(`the dashboard did not start: ${dash.log()}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        // The fragment carries the example token to the page (it never reaches the server's logs).
        say(`metrics: curl http://127.0.0.1:${metricsPorts[0]}/metrics (distributor), :${metricsPorts[1]} and :${metricsPorts[2]} (workers)`);
        say(`dashboard: ${/open (\S+)/.exec(dashOut)[1]}#token=${loadConfig('dashboard', join(ROOT, 'config', 'dashboard.json')).dashboard.token}`);
        const jobs = [
          ['echo', { hello: 'taskmesh' }, {}],
          ['wordcount', { text: 'tasks flow from Redis to END over mutual TLS' }, {}],
          ['sleep', { ms: 3000, steps: 30 }, {}],
          ['sleep', { ms: 2000, steps: 10 }, {}],
          ['echo', { n: 42 }, {}],
          ['fail', { message: 'this one fails on purpose (max_attempts 2)' }, { max_attempts: 2 }],
        ];
        const started = Date.now();
        for (const [name, config, opts] of jobs) {
          const id = await client.submit(name, config, opts);
          ids.push(id);
          say(`submitted ${name.padEnd(9)} ${id}`);
        }
        const ends = await Promise.all(
          ids.map((id) =>
            client.wait(id, { timeoutMs: 30000 }).then((r) => {
              const secs = ((Date.now() - started) / 1000).toFixed(1);
              const what = r.state === 'END' ? JSON.stringify(r.result) : r.error;
              say(`${secs.padStart(5)}s  ${r.state.padEnd(6)} ${r.name.padEnd(9)} attempts=${r.attempts} worker=${r.worker}  ${what}`);
              return r;
            }),
          ),
        );
        const workers = new Set(ends.map((r) => r.worker));
        say(
          `${ends.filter((r) => r.state === 'END').length} tasks ended END, ${ends.filter((r) => r.state === 'FAILED').length} FAILED as expected, on ${workers.size} worker(s)`,
        );
        failed = ends.some((r, i) => (jobs[i][0] === 'fail' ? r.state !== 'FAILED' : r.state !== 'END'));
        if (KEEP && !failed) {
          say('--keep: the mesh stays up with a new task every 3 s; Ctrl-C stops it');
          // From here a signal ends the examples' phase normally instead of interrupting it.
          const stopped = new Promise((resolve) => (onSignal = resolve));
          const t = setInterval(() => {
            client.submit('sleep', { ms: 8000 + Math.floor(Math.random() * 8000), steps: 40 }).then(
              (id) => ids.push(id),
              () => undefined,
            );
          }, 3000);
          await stopped;
          clearInterval(t);
        }
      })(),
      interrupted,
    ]);
  } catch (err) {
    failed = true;
    if (signalled) {
      process.stderr.write(`demo interrupted (${signalled})\n`);
    } else {
      process.stderr.write(`demo failed: ${err.message}\n`);
      for (const p of procs) process.stderr.write(`--- ${p.name}\n${p.log()}`);
    }
  } finally {
    say('stopping the watcher, the workers and the distributor (SIGTERM)');
    for (const p of procs.slice(1)) p.child.kill('SIGTERM');
    await Promise.all(procs.slice(1).map((p) => p.exited));
    procs[0].child.kill('SIGTERM');
    const codes = await Promise.all(procs.map((p) => p.exited));
    if (codes.some((c) => c !== 0)) {
      failed = true;
      process.stderr.write(`a process exited with ${codes.join(', ')}\n`);
    }
    await client.close();
    // Only what this demo made: its task records (its processes deregistered themselves).
    const m = redis.multi();
    for (const id of ids) m.del(`${PREFIX}task:${id}`).srem(`${PREFIX}tasks`, id).zrem(`${PREFIX}ended`, id);
    await m.exec();
    redis.disconnect();
  }
  say(failed ? 'demo FAILED' : 'demo done');
  process.exit(failed ? 1 : 0);
}

main();
