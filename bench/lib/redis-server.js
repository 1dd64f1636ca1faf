'use strict';
/**
 * A throwaway redis-server for one bench run: its own free loopback port, no persistence, killed
 * at the end. The shared Redis on 6379 is never touched.
 */
const fs = require('node:fs');
const path = require('node:path');
const Redis = require('ioredis');
const procs = require('./procs');

function client(port, extra = {}) {
  // protocol 2 and explicit options: ioredis 6 changed its defaults (RESP3, reconnect backoff).
  return new Redis({ host: '127.0.0.1', port, protocol: 2, lazyConnect: false, maxRetriesPerRequest: 3, enableOfflineQueue: true, ...extra });
}

function parseInfo(text) {
  const out = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

async function startRedis(dir) {
  const port = await procs.freePort();
  const rdir = path.join(dir, 'redis');
  fs.mkdirSync(rdir, { recursive: true });
  const child = procs.start(
    'redis-server',
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
    ],
    { env: procs.cleanEnv() },
  );
  const deadline = Date.now() + 10000;
  let redis = null;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${procs.tail(child)}`);
    try {
      redis = client(port, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
      redis.on('error', () => undefined);
      await redis.ping();
      break;
    } catch {
      redis?.disconnect();
      redis = null;
      if (Date.now() > deadline) throw new Error('redis-server did not answer within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  redis.disconnect();
  const admin = client(port);
  admin.on('error', () => undefined);
  const version = parseInfo(await admin.info('server')).redis_version;
  return {
    port,
    pid: child.pid,
    child,
    version,
    url: `redis://127.0.0.1:${port}`,
    admin,
    client: (extra) => client(port, extra),
    /** Redis CPU seconds, commands processed and used memory now. */
    async snapshot() {
      const i = parseInfo(await admin.info('all'));
      return {
        at: Date.now(),
        cpuS: Number(i.used_cpu_user) + Number(i.used_cpu_sys),
        commands: Number(i.total_commands_processed),
        usedMemory: Number(i.used_memory),
      };
    },
    async commandstats() {
      const i = parseInfo(await admin.info('commandstats'));
      const out = {};
      for (const [k, v] of Object.entries(i)) {
        if (!k.startsWith('cmdstat_')) continue;
        const m = /calls=(\d+),usec=(\d+)/.exec(v);
        if (m) out[k.slice(8)] = { calls: Number(m[1]), usec: Number(m[2]) };
      }
      return out;
    },
    async reset() {
      await admin.flushall();
      await admin.config('resetstat');
    },
    async stop() {
      admin.disconnect();
      await procs.stop(child, 'SIGKILL');
    },
  };
}

/** Difference of two snapshots over their interval. */
function delta(a, b) {
  return { seconds: (b.at - a.at) / 1000, cpuS: b.cpuS - a.cpuS, commands: b.commands - a.commands, memory: b.usedMemory - a.usedMemory };
}

module.exports = { startRedis, parseInfo, delta, client };
