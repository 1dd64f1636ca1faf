'use strict';
/**
 * The floor: what the machine allows before any distributor or worker logic.
 *  - Redis: one client running the minimal Redis writes of one task back to back, pipelined,
 *    with taskmesh's own scripts and with plain commands (bench/children/redis-floor.js);
 *  - one mutual-TLS WebSocket's message rate, client and server in two processes
 *    (bench/children/ws-floor.js).
 */
const path = require('node:path');
const procs = require('../lib/procs');
const { ensureCerts } = require('../systems/taskmesh');

const CHILDREN = path.join(__dirname, '..', 'children');

function message(child, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${type} from ${child.label} within ${timeoutMs} ms:\n${procs.tail(child)}`)), timeoutMs);
    child.on('message', (m) => {
      if (m && m.t === type) {
        clearTimeout(t);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${child.label} exited ${code}:\n${procs.tail(child)}`));
    });
  });
}

const REDIS_FIGURES = [
  { key: 'tps', label: 'tasks/s (one client)', better: 'higher', fmt: 'int' },
  { key: 'redisUsPerTask', label: 'Redis CPU µs / task', better: 'lower', fmt: 'dec1' },
  { key: 'cmdsPerTask', label: 'Redis commands / task', better: 'lower', fmt: 'dec1' },
  { key: 'maxTps', label: 'tasks/s if Redis were the only limit', better: 'higher', fmt: 'int' },
];

function redisTrial(n) {
  return async (ctx, variant) => {
    const s0 = await ctx.redis.snapshot();
    const child = procs.startNode(
      `redis-floor-${variant.mode}`,
      path.join(CHILDREN, 'redis-floor.js'),
      [JSON.stringify({ port: ctx.redis.port, prefix: 'floor:', n, batch: 500, mode: variant.mode })],
      { ipc: true, cwd: path.join(__dirname, '..') },
    );
    const m = await message(child, 'floor', 120000);
    if (m.error) throw new Error(m.error);
    const s1 = await ctx.redis.snapshot();
    const us = ((s1.cpuS - s0.cpuS) * 1e6) / n;
    const out = { tps: n / m.seconds, redisUsPerTask: us, cmdsPerTask: (s1.commands - s0.commands) / n, maxTps: 1e6 / us };
    out.note = m.fallback || `used ${m.used}`;
    return out;
  };
}

const WS_FIGURES = [
  { key: 'msgsPerS', label: 'frames/s, one socket', better: 'higher', fmt: 'int' },
  { key: 'serverCpuUsPerMsg', label: 'receiver CPU µs / frame', better: 'lower', fmt: 'dec1' },
  { key: 'clientCpuUsPerMsg', label: 'sender CPU µs / frame', better: 'lower', fmt: 'dec1' },
];

function wsTrial(n) {
  return async (ctx) => {
    const certs = ensureCerts(ctx);
    const server = procs.startNode('ws-floor-server', path.join(CHILDREN, 'ws-floor.js'), [JSON.stringify({ role: 'server', certs, n })], {
      ipc: true,
      cwd: path.join(__dirname, '..'),
    });
    const listening = await message(server, 'listening', 15000);
    const received = message(server, 'received', 120000);
    const client = procs.startNode(
      'ws-floor-client',
      path.join(CHILDREN, 'ws-floor.js'),
      [JSON.stringify({ role: 'client', certs, n, port: listening.port, fallback: listening.fallback })],
      { ipc: true, cwd: path.join(__dirname, '..') },
    );
    // CPU from the first frame on: start-up and the handshake are not the socket's rate.
    const first = await message(client, 'sending', 15000);
    const c0 = procs.procStat(server.pid);
    const k0 = procs.procStat(client.pid);
    const r = await received;
    const c1 = procs.procStat(server.pid);
    const k1 = procs.procStat(client.pid);
    const out = {
      msgsPerS: r.n / ((r.at - first.at) / 1000),
      serverCpuUsPerMsg: ((c1.cpuS - c0.cpuS) * 1e6) / n,
      clientCpuUsPerMsg: k1 ? ((k1.cpuS - k0.cpuS) * 1e6) / n : undefined,
    };
    if (r.fallback) out.note = "taskmesh's listen/connect did not run; plain ws over https with the same certificates";
    await procs.stop(client);
    await procs.stop(server);
    return out;
  };
}

module.exports = {
  id: 'FLOOR',
  title: 'the floor: Redis alone, one mTLS WebSocket',
  cases(opts) {
    const n = opts.quick ? 10000 : 50000;
    const frames = opts.quick ? 50000 : 200000;
    return [
      {
        id: 'redis-floor',
        title: `${n.toLocaleString('en-US')} tasks' minimal Redis writes back to back (500 per pipeline), no processes between`,
        systems: [
          { key: 'floor-scripts', label: 'taskmesh scripts', peer: false, mode: 'scripts' },
          { key: 'floor-plain', label: 'plain commands', peer: false, mode: 'plain' },
        ],
        reference: 'floor-plain',
        figures: REDIS_FIGURES,
        trial: redisTrial(n),
      },
      {
        id: 'ws-floor',
        title: `${frames.toLocaleString('en-US')} 'done' frames over one mutual-TLS WebSocket (taskmesh channel layer)`,
        systems: [{ key: 'ws', label: 'mTLS WebSocket', peer: false }],
        figures: WS_FIGURES,
        trial: wsTrial(frames),
      },
    ];
  },
};
