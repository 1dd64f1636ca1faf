'use strict';
/**
 * One mutual-TLS WebSocket's message rate. argv[2] JSON:
 *   { role: 'server', certs, n } -> listens on a free port, reports { t: 'listening', port }, then
 *     { t: 'received', n, seconds } once n frames have arrived (first to last frame);
 *   { role: 'client', certs, port, n } -> connects and sends n frames as fast as the socket takes them.
 * Uses taskmesh's own channel layer (`listen`/`connect` from @taskmesh/common/internal: share_key
 * handshake, every frame validated) and falls back to plain `ws` over `https` with the same
 * certificates if that layer's API has moved (reported as `fallback`).
 */
const fs = require('node:fs');
const path = require('node:path');

const cfg = JSON.parse(process.argv[2]);
const pem = (f) => fs.readFileSync(path.join(cfg.certs, f), 'utf8');
const SHARE = 'bench-floor-share-key';
const frame = (i) => ({
  type: 'done',
  id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  epoch: 1,
  assignment: 'a1b2c3d4e5f60718',
  state: 'END',
  running: 0,
});
const { performance } = require('node:perf_hooks');
/** Sub-millisecond wall-clock time, comparable between the two processes. */
const wallNow = () => performance.timeOrigin + performance.now();
const log = { debug() {}, info() {}, warn() {}, error() {} };

let internal = null;
try {
  internal = require('@taskmesh/common/internal');
  if (typeof internal.listen !== 'function' || typeof internal.connect !== 'function') internal = null;
} catch {
  internal = null;
}

async function server() {
  let count = 0;
  const onMessage = () => {
    if (++count === cfg.n) process.send({ t: 'received', n: count, at: wallNow(), fallback: !internal });
  };
  if (internal) {
    try {
      const srv = await internal.listen({
        id: 'floor-d',
        role: 'distributor',
        tls: { key: pem('distributor-key.pem'), cert: pem('distributor.pem'), ca: pem('ca.pem') },
        shareKey: SHARE,
        host: '127.0.0.1',
        port: 0,
        maxPayload: 1 << 20,
        allow: [],
        accept: ['worker'],
        log,
        onChannel: (ch) => ch.on('message', onMessage),
      });
      process.send({ t: 'listening', port: srv.port, fallback: false });
      return;
    } catch (err) {
      process.stderr.write(`listen failed (${err.message}); plain ws\n`);
      internal = null;
    }
  }
  const https = require('node:https');
  const { WebSocketServer } = require('ws');
  const srv = https.createServer({
    key: pem('distributor-key.pem'),
    cert: pem('distributor.pem'),
    ca: pem('ca.pem'),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  const wss = new WebSocketServer({ server: srv, perMessageDeflate: false, maxPayload: 1 << 20 });
  wss.on('connection', (ws) => ws.on('message', (data) => (JSON.parse(data.toString()), onMessage())));
  srv.listen(0, '127.0.0.1', () => process.send({ t: 'listening', port: srv.address().port, fallback: true }));
}

async function client() {
  let send;
  let buffered;
  if (internal && !cfg.fallback) {
    const ch = await internal.connect({
      id: 'floor-w',
      role: 'worker',
      tls: { key: pem('worker-key.pem'), cert: pem('worker.pem'), ca: pem('ca.pem') },
      shareKey: SHARE,
      host: '127.0.0.1',
      port: cfg.port,
      maxPayload: 1 << 20,
      allow: [],
      log,
    });
    send = (m) => ch.send(m);
    buffered = () => ch.ws.bufferedAmount;
  } else {
    const { WebSocket } = require('ws');
    const ws = new WebSocket(`wss://127.0.0.1:${cfg.port}/`, {
      key: pem('worker-key.pem'),
      cert: pem('worker.pem'),
      ca: pem('ca.pem'),
      perMessageDeflate: false,
    });
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    send = (m) => ws.send(JSON.stringify(m));
    buffered = () => ws.bufferedAmount;
  }
  process.send({ t: 'sending', at: wallNow() });
  for (let i = 0; i < cfg.n;) {
    for (let k = 0; k < 500 && i < cfg.n; k++, i++) send(frame(i));
    while (buffered() > 1 << 20) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  }
  process.send({ t: 'sent' });
}

(cfg.role === 'server' ? server() : client()).catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
process.on('disconnect', () => process.exit(0));
