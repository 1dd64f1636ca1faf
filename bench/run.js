#!/usr/bin/env node
'use strict';
/**
 * pnpm bench [--quick] [--rounds N] [--only W1,W4] [--json FILE] [--max-minutes M]
 * pnpm bench --cluster [...]: taskmesh alone on a 3-master Redis Cluster (bench/cluster.js)
 *
 * Starts a throwaway redis-server on a free loopback port, runs each workload against taskmesh
 * (the real bins over mutual TLS) and its peers (BullMQ, Bee-Queue), alternating the systems
 * within every round, prints median and range per figure with the ratio to the fastest peer and
 * whether each target is met, and writes the figures as JSON. Every process it starts is killed
 * by pid when it ends, on SIGINT/SIGTERM, and when its time limit runs out.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');
const { execFileSync } = require('node:child_process');
const procs = require('./lib/procs');
const { startRedis } = require('./lib/redis-server');
const report = require('./lib/report');
const WORKLOADS = require('./workloads');

const ROOT = path.resolve(__dirname, '..');
const USAGE = 'usage: pnpm bench [--quick] [--rounds N] [--only W1,W2,...] [--json FILE] [--max-minutes M] [--keep-logs] [--cpu-prof DIR]';

function parseArgs(argv) {
  let values;
  try {
    ({ values } = util.parseArgs({
      args: argv,
      strict: true,
      options: {
        // bench/cluster.js reads its own line; here it only picks the mode.
        cluster: { type: 'boolean' },
        quick: { type: 'boolean', default: false },
        rounds: { type: 'string' },
        only: { type: 'string' },
        json: { type: 'string' },
        'max-minutes': { type: 'string' },
        'keep-logs': { type: 'boolean', default: false },
        'cpu-prof': { type: 'string' },
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
  // V8 CPU profiles of the taskmesh distributor and workers into DIR (bench/systems/taskmesh.js); profile the
  // bench process itself (the watcher, the producers) with `node --cpu-prof bench/run.js`.
  if (values['cpu-prof'] !== undefined) process.env.BENCH_CPU_PROF = path.resolve(values['cpu-prof']);
  const o = {
    quick: values.quick,
    rounds: values.rounds === undefined ? (values.quick ? 1 : 3) : Number(values.rounds),
    only:
      values.only === undefined
        ? null
        : values.only
            .split(',')
            .map((s) => s.trim().toUpperCase())
            .filter(Boolean),
    json: values.json === undefined ? path.join(__dirname, 'results', 'latest.json') : path.resolve(values.json),
    maxMinutes: values['max-minutes'] === undefined ? (values.quick ? 15 : 90) : Number(values['max-minutes']),
    keepLogs: values['keep-logs'],
  };
  if (!Number.isInteger(o.rounds) || o.rounds < 1) usage('--rounds must be an integer >= 1');
  if (o.only) {
    const known = WORKLOADS.map((w) => w.id);
    for (const id of o.only) if (!known.includes(id)) usage(`--only: unknown workload ${id} (known: ${known.join(', ')})`);
  }
  return o;
}

function usage(msg) {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function versions(redisVersion) {
  const v = (p) => {
    try {
      return require(path.join(p, 'package.json')).version;
    } catch {
      return null;
    }
  };
  const nm = path.join(__dirname, 'node_modules');
  let commit = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--', 'packages'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
      commit += ' (packages/ modified)';
  } catch {
    /* not a git checkout */
  }
  return {
    taskmesh: v(path.join(ROOT, 'packages/common')),
    commit,
    node: process.versions.node,
    redis: redisVersion,
    bullmq: v(path.join(nm, 'bullmq')),
    'bee-queue': v(path.join(nm, 'bee-queue')),
    ioredis: v(path.join(nm, 'ioredis')),
  };
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskmesh-bench-'));
  procs.setLogDir(dir);

  let finishing = false;
  let failures = 0;
  const cleanup = () => {
    procs.killAllSync();
    if (opts.keepLogs || failures > 0) process.stderr.write(`bench: process logs kept in ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (finishing) return;
      finishing = true;
      process.stderr.write(`\nbench: ${sig}, stopping every process it started\n`);
      process.exit(130);
    });
  }
  const hardStop = setTimeout(() => {
    process.stderr.write(`\nbench: over its ${opts.maxMinutes}-minute limit; stopping\n`);
    process.exit(3);
  }, opts.maxMinutes * 60000);
  hardStop.unref();

  const redis = await startRedis(dir);
  const ctx = { redis, dir, opts, log: (m) => process.stderr.write(`${m}\n`) };
  const meta = {
    date: new Date().toISOString(),
    machine: machine(),
    versions: versions(redis.version),
    options: { quick: opts.quick, rounds: opts.rounds, only: opts.only },
    redisPort: redis.port,
  };
  process.stdout.write(
    `taskmesh bench — ${meta.machine.cores} × ${meta.machine.cpu}, node ${meta.versions.node}, redis ${redis.version} (throwaway, port ${redis.port}), ` +
      `BullMQ ${meta.versions.bullmq}, Bee-Queue ${meta.versions['bee-queue']}; ${opts.rounds} round(s)${opts.quick ? ', quick' : ''}\n`,
  );

  const results = {};
  const selected = WORKLOADS.filter((w) => !opts.only || opts.only.includes(w.id));
  for (const w of selected) {
    const cases = w.cases(opts);
    results[w.id] = { id: w.id, title: w.title, cases: {} };
    for (const c of cases) {
      const rec = {
        id: c.id,
        title: c.title,
        reference: c.reference,
        systems: c.systems.map((s) => ({ key: s.key, label: s.label, peer: s.peer })),
        figures: c.figures,
        trials: {},
        errors: {},
      };
      results[w.id].cases[c.id] = rec;
      const rounds = c.rounds ? c.rounds(opts) : opts.rounds;
      process.stdout.write(`\n${w.id} ${c.title} (${rounds} round${rounds > 1 ? 's' : ''})\n`);
      for (let r = 0; r < rounds; r++) {
        // A B C, then B C A, ...: no system always runs first or right after another.
        const order = c.systems.map((_, i) => c.systems[(i + r) % c.systems.length]);
        for (const sys of order) {
          await redis.reset();
          const t0 = Date.now();
          process.stderr.write(`  round ${r + 1}/${rounds} ${sys.label} ... `);
          try {
            const out = await c.trial(ctx, sys, r);
            (rec.trials[sys.key] ||= []).push(out);
            process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
          } catch (err) {
            failures++;
            (rec.errors[sys.key] ||= []).push(String(err.message || err).split('\n')[0]);
            process.stderr.write(`FAILED: ${err.message}\n`);
          } finally {
            await procs.stopAll(new Set([redis.pid])); // nothing of this trial outlives it
          }
        }
      }
      process.stdout.write(report.table(rec) + '\n');
    }
  }

  const targets = [];
  for (const w of selected) if (w.targets) targets.push(...w.targets(results, opts));
  if (targets.length) {
    process.stdout.write('\nTargets (issue 10)\n');
    const width = Math.max(...targets.map((t) => t.text.length));
    for (const t of targets) process.stdout.write(`  ${t.text.padEnd(width)}   ${t.status.toUpperCase().padEnd(7)}  ${t.detail ?? ''}\n`);
  }

  const json = { meta: { ...meta, seconds: Math.round((Date.now() - started) / 1000) }, results: {}, targets };
  for (const [wid, w] of Object.entries(results)) {
    json.results[wid] = { title: w.title, cases: {} };
    for (const [cid, c] of Object.entries(w.cases)) {
      const sums = report.summarize(c);
      const figures = {};
      for (const f of c.figures) {
        const r = report.ratio(c, sums, f);
        figures[f.key] = { label: f.label, better: f.better, systems: sums[f.key], ratio: r };
      }
      json.results[wid].cases[cid] = { title: c.title, systems: c.systems, figures, trials: c.trials, errors: c.errors };
    }
  }
  fs.mkdirSync(path.dirname(opts.json), { recursive: true });
  fs.writeFileSync(opts.json, JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`\nJSON: ${path.relative(process.cwd(), opts.json) || opts.json}  (${json.meta.seconds} s)\n`);
  await redis.stop();
}

if (process.argv.includes('--cluster'))
  require('./cluster').cli(); // taskmesh on a 3-master Redis Cluster
else
  main().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`bench: ${err.stack || err}\n`);
      process.exit(1);
    },
  );
