#!/usr/bin/env node
'use strict';
/**
 * pnpm bench --cluster [--quick] [--rounds N] [--json FILE] [--max-minutes M] [--keep-logs]
 * (or `node bench/cluster.js ...` after `pnpm run build`)
 *
 * taskmesh alone on a throwaway 3-master Redis Cluster: W1 and W4 with one mesh, then with three
 * meshes at once, their hash tags chosen so that each mesh's slot is on a different master. The
 * real bins over mutual TLS, configured with `redis.cluster` and a hash-tag prefix; completion
 * read from the public records through an ioredis Cluster client. Per-process CPU of every Redis
 * master, distributor, worker and of the bench process (the producer), and of the whole machine
 * (/proc/stat), show what bounds the figures. Every process is killed by pid at the end, on
 * SIGINT/SIGTERM and at the time limit.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');
const { randomBytes } = require('node:crypto');
const { execFileSync } = require('node:child_process');
const procs = require('./lib/procs');
const { startCluster } = require('./lib/redis-cluster');
const { summary } = require('./lib/stats');
const { fmt } = require('./lib/report');
const taskmesh = require('./systems/taskmesh');
const { makeJobs, sleep, until } = require('./systems/base');

const ROOT = path.resolve(__dirname, '..');
const USAGE = 'usage: pnpm bench --cluster [--quick] [--rounds N] [--json FILE] [--max-minutes M] [--keep-logs]';
const MESHES = 3;
const SETTLE_MS = 2000;

function parseArgs(argv) {
  let values;
  try {
    ({ values } = util.parseArgs({
      args: argv,
      strict: true,
      options: {
        cluster: { type: 'boolean' },
        quick: { type: 'boolean', default: false },
        rounds: { type: 'string' },
        json: { type: 'string' },
        'max-minutes': { type: 'string' },
        'keep-logs': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    usage(err.message.split('\n')[0]);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const o = {
    quick: values.quick,
    rounds: values.rounds === undefined ? (values.quick ? 1 : 2) : Number(values.rounds),
    json: values.json === undefined ? path.join(__dirname, 'results', 'cluster-latest.json') : path.resolve(values.json),
    maxMinutes: values['max-minutes'] === undefined ? (values.quick ? 8 : 30) : Number(values['max-minutes']),
    keepLogs: values['keep-logs'],
  };
  if (!Number.isInteger(o.rounds) || o.rounds < 1) usage('--rounds must be an integer >= 1');
  return o;
}

function usage(msg) {
  process.stderr.write(`bench --cluster: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineBusyS() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - f[3] - f[4]) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** CPU seconds of this process (the producer and the completion reads). */
function selfCpuS() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Every process figure of a phase, started by `begin()` and read by `end()`. */
function cpuMeter(cl, meshes) {
  const t0 = Date.now();
  const m0 = machineBusyS();
  const b0 = selfCpuS();
  const p0 = meshes.map((c) => c.procStats());
  let s0;
  return {
    async begin() {
      s0 = await cl.snapshot();
      return s0;
    },
    async end() {
      const s1 = await cl.snapshot();
      const p1 = meshes.map((c) => c.procStats());
      const secs = (Date.now() - t0) / 1000;
      const d = (a, b) => (a && b ? b.cpuS - a.cpuS : NaN);
      const out = {
        secs,
        s0,
        s1,
        masters: cl.nodes.map((n) => s1[n.port].cpuS - s0[n.port].cpuS),
        workers: meshes.map((c, i) => d(p0[i].workers[0], p1[i].workers[0])),
        distributors: meshes.map((c, i) => d(p0[i].distributor, p1[i].distributor)),
        workerRss: meshes.map((c, i) => (p1[i].workers[0]?.rssBytes ?? NaN) / 1048576),
        distributorRss: meshes.map((c, i) => (p1[i].distributor?.rssBytes ?? NaN) / 1048576),
        producer: selfCpuS() - b0,
        machine: machineBusyS() - m0,
      };
      return out;
    },
  };
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/** Cores used over the phase by each kind of process, and by everything else on the machine. */
function cores(prefixKey, m) {
  const o = {};
  const redis = sum(m.masters);
  const workers = sum(m.workers);
  const dists = sum(m.distributors);
  o[`${prefixKey}.redis`] = redis / m.secs;
  o[`${prefixKey}.workers`] = workers / m.secs;
  o[`${prefixKey}.distributors`] = dists / m.secs;
  o[`${prefixKey}.producer`] = m.producer / m.secs;
  o[`${prefixKey}.machine`] = m.machine / m.secs;
  o[`${prefixKey}.other`] = (m.machine - redis - workers - dists - m.producer) / m.secs;
  for (let i = 0; i < m.masters.length; i++) o[`${prefixKey}.master${i}`] = m.masters[i] / m.secs;
  return o;
}

async function startMeshes(ctx, tags, workers) {
  const meshes = [];
  for (const t of tags) meshes.push(await taskmesh.start(ctx, { workers: [workers], prefix: t.prefix }));
  return meshes;
}

async function stopMeshes(meshes) {
  await Promise.all(meshes.map((c) => c.stop()));
}

/** W1: n no-op tasks per mesh, 1 worker × 100 each, every mesh submitted and read at once. */
async function w1(ctx, tags, n) {
  const { cl } = ctx;
  const meshes = await startMeshes(ctx, tags, 100);
  try {
    const jobs = meshes.map(() => makeJobs(n, 'noop', { r: 0 }));
    const polled0 = meshes.map((c) => c.pollCommands);
    const meter = cpuMeter(cl, meshes);
    await meter.begin();
    const t0 = Date.now();
    const done = await Promise.all(
      meshes.map(async (c, i) => {
        await c.submit(jobs[i]);
        return c.waitDone(
          jobs[i].map((j) => j.id),
          Math.max(60000, n * 3 * meshes.length),
        );
      }),
    );
    const m = await meter.end();
    const out = { tps: (n * meshes.length) / ((Math.max(...done) - t0) / 1000), ...cores('cores', m) };
    meshes.forEach((c, i) => {
      const port = tags[i].port;
      const k = cl.nodes.findIndex((x) => x.port === port);
      out[`tps${i}`] = n / ((done[i] - t0) / 1000);
      out[`redisCpuMsPer1k${i}`] = ((m.s1[port].cpuS - m.s0[port].cpuS) * 1e6) / n;
      // Less the bench's own completion reads and its one INFO on that node.
      out[`cmdsPerTask${i}`] = (m.s1[port].commands - m.s0[port].commands - (c.pollCommands - polled0[i]) - 1) / n;
      out[`workerCpuMsPer1k${i}`] = (m.workers[i] * 1e6) / n;
      out[`distributorCpuMsPer1k${i}`] = (m.distributors[i] * 1e6) / n;
      out[`master${i}`] = k;
      if (c.failed) out.note = `${c.failed} tasks of mesh ${i + 1} did not end END`;
    });
    return out;
  } finally {
    await stopMeshes(meshes);
  }
}

/** W4: n tasks sleeping sleepMs on one worker × n per mesh; a window once all have started + 2 s. */
async function w4(ctx, tags, { n, windowMs, sleepMs }) {
  const { cl } = ctx;
  const meshes = await startMeshes(ctx, tags, n);
  try {
    const base = await cl.snapshot();
    const t0 = Date.now();
    await Promise.all(meshes.map((c) => c.submit(makeJobs(n, 'sleep', { r: 2, ms: sleepMs }))));
    const budget = sleepMs - windowMs - SETTLE_MS - 2000;
    await until(
      () => meshes.every((c) => c.startCount >= n),
      budget,
      `all ${n} tasks of each mesh to run (${meshes.map((c) => c.startCount).join(', ')} so far)`,
      20,
      () => meshes.forEach((c) => c.checkAlive()),
    );
    const rampS = (Date.now() - t0) / 1000;
    await sleep(SETTLE_MS);
    const cs0 = await Promise.all(cl.nodes.map((x) => cl.commandstats(x.port)));
    const meter = cpuMeter(cl, meshes);
    await meter.begin();
    await sleep(windowMs);
    const m = await meter.end();
    const cs1 = await Promise.all(cl.nodes.map((x) => cl.commandstats(x.port)));
    meshes.forEach((c) => c.checkAlive());
    const out = { rampS, windowS: m.secs, ...cores('cores', m) };
    cl.nodes.forEach((x, k) => {
      out[`redisCpuS${k}`] = m.masters[k];
      out[`cmdsPerS${k}`] = (m.s1[x.port].commands - m.s0[x.port].commands) / ((m.s1[x.port].at - m.s0[x.port].at) / 1000);
    });
    meshes.forEach((c, i) => {
      const port = tags[i].port;
      out[`bytesPerTask${i}`] = (m.s1[port].usedMemory - base[port].usedMemory) / n;
      out[`workerCpuS${i}`] = m.workers[i];
      out[`workerRssMiB${i}`] = m.workerRss[i];
      out[`distributorCpuS${i}`] = m.distributors[i];
      out[`distributorRssMiB${i}`] = m.distributorRss[i];
      if (c.finishCount > 0) out.note = `${c.finishCount} tasks of mesh ${i + 1} finished before the window ended`;
    });
    out.commandstats = cl.nodes.map((x, k) =>
      Object.entries(cs1[k])
        .map(([cmd, v]) => [cmd, v.calls - (cs0[k][cmd]?.calls ?? 0), v.usec - (cs0[k][cmd]?.usec ?? 0)])
        .filter(([, calls]) => calls > 0)
        .sort((a, b) => b[2] - a[2])
        .slice(0, 6)
        .map(([cmd, calls, usec]) => ({ cmd, calls, usec })),
    );
    return out;
  } finally {
    await stopMeshes(meshes);
  }
}

/** Hash-tag prefixes, one per master, checked with CLUSTER KEYSLOT and CLUSTER NODES. */
async function chooseTags(cl) {
  const out = [];
  for (const [i, node] of cl.nodes.entries()) {
    for (let tries = 0; ; tries++) {
      if (tries > 2000) throw new Error(`no hash tag found for master ${node.port}`);
      const prefix = `{m${i + 1}-${randomBytes(2).toString('hex')}}:`;
      const place = await cl.placeOf(`${prefix}new-task`);
      if (place.port !== node.port) continue;
      out.push({ prefix, ...place });
      break;
    }
  }
  return out;
}

// ---- the table ----------------------------------------------------------------------------

function cell(trials, key, f) {
  const s = summary(trials.map((t) => t[key]));
  if (s.n === 0) return '–';
  if (s.n === 1 || s.min === s.max) return fmt(s.median, f);
  return `${fmt(s.median, f)} (${fmt(s.min, f)}–${fmt(s.max, f)})`;
}

function cells(trials, keys, f) {
  return keys.map((k) => cell(trials, k, f)).join(' / ');
}

function printTable(title, rows, cols) {
  const head = ['figure', ...cols.map((c) => c.label)];
  const body = rows.map((r) => [r.label, ...cols.map((c) => r.cell(c))]);
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  const line = (r) =>
    '  ' +
    r
      .map((x, i) => String(x).padEnd(w[i]))
      .join('   ')
      .trimEnd();
  process.stdout.write(`\n${title}\n${line(head)}\n  ${w.map((x) => '-'.repeat(x)).join('   ')}\n${body.map(line).join('\n')}\n`);
  for (const c of cols) {
    for (const t of c.trials) if (t.note) process.stdout.write(`  note ${c.label}: ${t.note}\n`);
    for (const e of c.errors) process.stdout.write(`  ! ${c.label}: ${e}\n`);
  }
}

const idx = (k, n) => Array.from({ length: n }, (_, i) => `${k}${i}`);

function w1Rows() {
  const per = (label, k, f) => ({ label, cell: (c) => cells(c.trials, idx(k, c.meshes), f) });
  const one = (label, k, f) => ({ label, cell: (c) => cell(c.trials, k, f) });
  return [
    one('tasks/s, all meshes ↑', 'tps', 'int'),
    per('tasks/s, each mesh ↑', 'tps', 'int'),
    per('Redis CPU ms / 1k tasks (its master) ↓', 'redisCpuMsPer1k', 'int'),
    per('Redis commands / task (its master) ↓', 'cmdsPerTask', 'dec1'),
    per('worker CPU ms / 1k tasks ↓', 'workerCpuMsPer1k', 'int'),
    per('distributor CPU ms / 1k tasks ↓', 'distributorCpuMsPer1k', 'int'),
    { label: 'cores busy: masters A / B / C', cell: (c) => cells(c.trials, idx('cores.master', 3), 'dec2') },
    one('cores busy: workers (sum)', 'cores.workers', 'dec2'),
    one('cores busy: distributors (sum)', 'cores.distributors', 'dec2'),
    one('cores busy: producer (bench process)', 'cores.producer', 'dec2'),
    one('cores busy: anything else', 'cores.other', 'dec2'),
    one('cores busy: whole machine (of 2)', 'cores.machine', 'dec2'),
  ];
}

function w4Rows() {
  const per = (label, k, f) => ({ label, cell: (c) => cells(c.trials, idx(k, c.meshes), f) });
  const one = (label, k, f) => ({ label, cell: (c) => cell(c.trials, k, f) });
  return [
    { label: 'Redis CPU s, masters A / B / C ↓', cell: (c) => cells(c.trials, idx('redisCpuS', 3), 'dec3') },
    { label: 'Redis commands/s, masters A / B / C ↓', cell: (c) => cells(c.trials, idx('cmdsPerS', 3), 'int') },
    per('Redis bytes / task (its master) ↓', 'bytesPerTask', 'int'),
    per('worker CPU s ↓', 'workerCpuS', 'dec2'),
    per('worker RSS MiB ↓', 'workerRssMiB', 'dec1'),
    per('distributor CPU s ↓', 'distributorCpuS', 'dec2'),
    per('distributor RSS MiB ↓', 'distributorRssMiB', 'dec1'),
    one('submit → all running s ↓', 'rampS', 'dec2'),
    one('cores busy: whole machine (of 2)', 'cores.machine', 'dec2'),
    one('cores busy: anything else', 'cores.other', 'dec2'),
  ];
}

// ---- main ---------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskmesh-bench-cluster-'));
  procs.setLogDir(dir);
  let failures = 0;
  process.on('exit', () => {
    procs.killAllSync();
    if (opts.keepLogs || failures > 0) process.stderr.write(`bench --cluster: process logs kept in ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\nbench --cluster: ${sig}, stopping every process it started\n`);
      process.exit(130);
    });
  }
  setTimeout(() => {
    process.stderr.write(`\nbench --cluster: over its ${opts.maxMinutes}-minute limit; stopping\n`);
    process.exit(3);
  }, opts.maxMinutes * 60000).unref();

  const cl = await startCluster(dir, MESHES);
  const ctx = { redis: { url: null, client: () => cl.client(), taskmeshRedis: { cluster: cl.seeds } }, cl, dir, opts };
  const tags = await chooseTags(cl);
  let commit = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--', 'packages'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
      commit += ' (packages/ modified)';
  } catch {
    /* not a git checkout */
  }
  const cpus = os.cpus();
  const meta = {
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}` },
    versions: { commit, node: process.versions.node, redis: cl.version },
    options: { quick: opts.quick, rounds: opts.rounds },
    masters: cl.nodes.map((n, i) => ({ name: 'ABC'[i], port: n.port, pid: n.pid })),
    meshes: tags.map((t, i) => ({ mesh: i + 1, prefix: t.prefix, slot: t.slot, master: 'ABC'[i], port: t.port, nodeId: t.nodeId })),
  };
  process.stdout.write(
    `taskmesh bench --cluster — ${meta.machine.cores} × ${meta.machine.cpu}, node ${meta.versions.node}, redis ${cl.version}, commit ${commit}; ` +
      `3 masters ${cl.nodes.map((n, i) => `${'ABC'[i]}=${n.port}`).join(' ')}; ${opts.rounds} round(s)${opts.quick ? ', quick' : ''}\n` +
      tags.map((t, i) => `  mesh ${i + 1}: prefix ${t.prefix} slot ${t.slot} -> master ${'ABC'[i]} (port ${t.port}, ${t.nodeId.slice(0, 8)})`).join('\n') +
      '\n',
  );

  const n1 = opts.quick ? 3000 : 10000;
  const s4 = opts.quick ? { n: 1000, windowMs: 5000, sleepMs: 20000 } : { n: 5000, windowMs: 20000, sleepMs: 40000 };
  const CASES = [
    { id: 'w1-one', workload: 'W1', meshes: 1, label: 'one mesh', run: () => w1(ctx, tags.slice(0, 1), n1) },
    { id: 'w1-three', workload: 'W1', meshes: 3, label: 'three meshes at once', run: () => w1(ctx, tags, n1) },
    { id: 'w4-one', workload: 'W4', meshes: 1, label: 'one mesh', run: () => w4(ctx, tags.slice(0, 1), s4) },
    { id: 'w4-three', workload: 'W4', meshes: 3, label: 'three meshes at once', run: () => w4(ctx, tags, s4) },
  ];
  for (const c of CASES) Object.assign(c, { trials: [], errors: [] });
  const keep = new Set(cl.pids);
  for (let r = 0; r < opts.rounds; r++) {
    for (const c of CASES) {
      await cl.reset();
      const t0 = Date.now();
      process.stderr.write(`  round ${r + 1}/${opts.rounds} ${c.workload} ${c.label} ... `);
      try {
        c.trials.push(await c.run());
        process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      } catch (err) {
        failures++;
        c.errors.push(String(err.message || err).split('\n')[0]);
        process.stderr.write(`FAILED: ${err.message}\n`);
      } finally {
        await procs.stopAll(keep);
      }
    }
  }

  const byWl = (w) => CASES.filter((c) => c.workload === w);
  printTable(
    `W1 — ${n1.toLocaleString('en-US')} no-op tasks per mesh, 1 worker × 100 per mesh (each mesh: figure per mesh, "a / b / c")`,
    w1Rows(),
    byWl('W1'),
  );
  printTable(
    `W4 — ${s4.n.toLocaleString('en-US')} tasks per mesh sleeping ${s4.sleepMs / 1000} s on 1 worker × ${s4.n.toLocaleString('en-US')}, ${s4.windowMs / 1000} s window`,
    w4Rows(),
    byWl('W4'),
  );

  const json = { meta: { ...meta, seconds: Math.round((Date.now() - started) / 1000) }, cases: {} };
  for (const c of CASES) {
    const keys = [...new Set(c.trials.flatMap((t) => Object.keys(t)))].filter((k) => c.trials.some((t) => typeof t[k] === 'number'));
    const figures = {};
    for (const k of keys) {
      const s = summary(c.trials.map((t) => t[k]));
      figures[k] = { median: s.median, min: s.min, max: s.max, n: s.n };
    }
    json.cases[c.id] = { workload: c.workload, label: c.label, meshes: c.meshes, figures, trials: c.trials, errors: c.errors };
  }
  fs.mkdirSync(path.dirname(opts.json), { recursive: true });
  fs.writeFileSync(opts.json, JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`\nJSON: ${path.relative(process.cwd(), opts.json) || opts.json}  (${json.meta.seconds} s)\n`);
  await cl.stop();
  return failures;
}

function cli() {
  main().then(
    (failures) => process.exit(failures ? 1 : 0),
    (err) => {
      process.stderr.write(`bench --cluster: ${err.stack || err}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) cli();

module.exports = { cli };
