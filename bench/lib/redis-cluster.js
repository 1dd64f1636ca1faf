'use strict';
/**
 * A throwaway 3-master Redis Cluster for `bench/cluster.js`, started the way the topology tests
 * start theirs: N `redis-server --cluster-enabled yes` on free loopback ports (each with a free
 * bus port, port + 10000), `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`,
 * then `cluster_state:ok` on every node. Every process is started through procs.js (killed by
 * pid); the shared Redis on 6379 is never touched.
 */
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { execFile } = require('node:child_process');
const Redis = require('ioredis');
const procs = require('./procs');
const { parseInfo, client } = require('./redis-server');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A loopback port whose cluster bus port (port + 10000) is free too, never 6379. */
async function clusterPort(taken) {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + Math.floor(Math.random() * 25000);
    if (p === 6379 || taken.has(p) || taken.has(p + 10000)) continue;
    if ((await portFree(p)) && (await portFree(p + 10000))) {
      taken.add(p);
      taken.add(p + 10000);
      return p;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

function run(cmd, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, env: procs.cleanEnv() }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`)) : resolve(stdout),
    );
  });
}

async function startCluster(dir, count = 3) {
  const rdir = path.join(dir, 'rcluster');
  fs.mkdirSync(rdir, { recursive: true });
  const taken = new Set();
  const nodes = [];
  for (let i = 0; i < count; i++) {
    const port = await clusterPort(taken);
    const child = procs.start(
      `redis-cluster-${port}`,
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        rdir,
        '--protected-mode',
        'yes',
        '--maxmemory-policy',
        'noeviction',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '5000',
      ],
      { env: procs.cleanEnv() },
    );
    nodes.push({ port, pid: child.pid, child });
  }
  const deadline = Date.now() + 10000;
  for (const n of nodes) {
    for (;;) {
      if (n.child.exitCode !== null) throw new Error(`redis-server on ${n.port} exited: ${procs.tail(n.child)}`);
      const r = client(n.port, { retryStrategy: () => null, maxRetriesPerRequest: 0, lazyConnect: true });
      r.on('error', () => undefined);
      try {
        await r.connect();
        if ((await r.ping()) === 'PONG') break;
      } catch {
        /* not yet */
      } finally {
        r.disconnect();
      }
      if (Date.now() > deadline) throw new Error(`redis-server on ${n.port} did not answer within 10 s`);
      await sleep(100);
    }
  }
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], 30000);
  for (const n of nodes) {
    n.admin = client(n.port);
    n.admin.on('error', () => undefined);
  }
  const okBy = Date.now() + 20000;
  for (const n of nodes) {
    while (!/cluster_state:ok/.test(await n.admin.cluster('INFO'))) {
      if (Date.now() > okBy) throw new Error(`cluster_state not ok on ${n.port}`);
      await sleep(100);
    }
  }
  const version = parseInfo(await nodes[0].admin.info('server')).redis_version;
  const seeds = nodes.map((n) => ['127.0.0.1', n.port]);

  /** CLUSTER NODES of the first node: port -> { id, slots: [[from, to], ...] } of each master. */
  async function masters() {
    const out = new Map();
    for (const line of String(await nodes[0].admin.cluster('NODES'))
      .trim()
      .split('\n')) {
      const f = line.split(' ');
      if (!f[2].includes('master')) continue;
      const port = Number(f[1].split('@')[0].split(':').pop());
      const slots = f
        .slice(8)
        .filter((s) => !s.startsWith('['))
        .map((s) => s.split('-').map(Number))
        .map(([a, b]) => [a, b ?? a]);
      out.set(port, { id: f[0], slots });
    }
    return out;
  }

  return {
    version,
    nodes,
    seeds,
    pids: nodes.map((n) => n.pid),
    /** An ioredis Cluster client (RESP2, like the single-server client of the bench). */
    client() {
      const c = new Redis.Cluster(
        seeds.map(([host, port]) => ({ host, port })),
        { redisOptions: { protocol: 2, maxRetriesPerRequest: 3 }, enableOfflineQueue: true, slotsRefreshInterval: 0, scaleReads: 'master' },
      );
      c.on('error', () => undefined);
      return c;
    },
    /** The slot of a key and the port and node id of the master that serves it (CLUSTER KEYSLOT / NODES). */
    async placeOf(key) {
      const slot = Number(await nodes[0].admin.cluster('KEYSLOT', key));
      for (const [port, m] of await masters()) if (m.slots.some(([a, b]) => slot >= a && slot <= b)) return { slot, port, nodeId: m.id };
      throw new Error(`no master serves slot ${slot}`);
    },
    /** port -> { at, cpuS, commands, usedMemory } of every master (INFO of each node). */
    async snapshot() {
      const out = {};
      await Promise.all(
        nodes.map(async (n) => {
          const i = parseInfo(await n.admin.info('all'));
          out[n.port] = {
            at: Date.now(),
            cpuS: Number(i.used_cpu_user) + Number(i.used_cpu_sys),
            commands: Number(i.total_commands_processed),
            usedMemory: Number(i.used_memory),
          };
        }),
      );
      return out;
    },
    async commandstats(port) {
      const n = nodes.find((x) => x.port === port);
      const i = parseInfo(await n.admin.info('commandstats'));
      const out = {};
      for (const [k, v] of Object.entries(i)) {
        const m = k.startsWith('cmdstat_') && /calls=(\d+),usec=(\d+)/.exec(v);
        if (m) out[k.slice(8)] = { calls: Number(m[1]), usec: Number(m[2]) };
      }
      return out;
    },
    async reset() {
      for (const n of nodes) {
        await n.admin.flushall();
        await n.admin.config('RESETSTAT');
      }
    },
    async stop() {
      for (const n of nodes) n.admin?.disconnect();
      await Promise.all(nodes.map((n) => procs.stop(n.child, 'SIGKILL')));
    },
  };
}

module.exports = { startCluster };
