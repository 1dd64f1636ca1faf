'use strict';
/**
 * W5's per-event CPU costs, in one process, without sockets or other processes competing:
 * - worker: a task calling ctx.progress 5,000 times (the bench task's loop) through EventLog and
 *   WatchHub to a stub channel whose socket counts as busy until the next turn (as a TLS socket
 *   is after a write), with one watcher subscribed, and with none;
 * - watcher: decodeFrame of 300 progress events as one `events` frame, and as a `batch` of
 *   `event` frames.
 * CPU from process.cpuUsage, per event, best and median of 30 repetitions.
 *
 *   node bench/w5-costs.js [ROOT]   # ROOT: a built checkout to measure (default: this one)
 */
const path = require('node:path');
const { EventEmitter } = require('node:events');

const root = path.resolve(process.argv[2] ?? path.join(__dirname, '..'));
const { WatchHub } = require(path.join(root, 'packages/worker/dist/watch-hub.js'));
const { EventLog } = require(path.join(root, 'packages/worker/dist/context.js'));
const { decodeFrame } = require(path.join(root, 'packages/common/dist/protocol.js'));

const log = { warn() {}, info() {}, debug() {}, error() {} };
const wallNow = () => performance.timeOrigin + performance.now();

class StubChannel extends EventEmitter {
  constructor() {
    super();
    this.peerId = 'stub';
    this.open = true;
    this.buffered = 0;
    // A write leaves the socket busy until the next turn, as under TLS.
    this.ws = {
      send: () => {
        this.buffered = 1;
        setImmediate(() => (this.buffered = 0));
      },
    };
  }
  startHealth() {}
  close() {}
  sendEncoded(frame) {
    this.ws.send(frame);
    return true;
  }
}

const stats = (r) => {
  r.sort((a, b) => a - b);
  return `best ${r[0].toFixed(2)} µs, median ${r[r.length >> 1].toFixed(2)} µs`;
};

async function worker(watched) {
  const hub = new WatchHub({ log, maxMessageBytes: 1 << 20 });
  const ch = new StubChannel();
  hub.attach(ch);
  const r = [];
  for (let k = 0; k < 30; k++) {
    const id = `task-${k}`;
    const events = new EventLog(id, 'progress', 1, 1000, (e) => hub.publish(e));
    events.push('state', { state: 'RUNNING' });
    if (watched) ch.emit('message', { type: 'watch', sub: `s${k}`, task: id, batch: true });
    const n = 5000;
    const c0 = process.cpuUsage();
    for (let i = 1; i <= n; i++) {
      const message = String(wallNow());
      if (events.progress) events.progress(i, n, message);
      else events.push('progress', { done: i, total: n, message }); // before EventLog.progress existed
    }
    events.push('state', { state: 'END', result: null });
    await new Promise((res) => setImmediate(res));
    await new Promise((res) => setImmediate(res));
    const c = process.cpuUsage(c0);
    r.push((c.user + c.system) / n);
  }
  hub.close();
  return stats(r);
}

function decode(kind) {
  const id = 'b3f1c2d4-1234-4abc-9def-0123456789ab';
  const evs = [];
  for (let i = 1; i <= 300; i++)
    evs.push({ task: id, name: 'progress', attempt: 1, seq: i, ts: Date.now(), type: 'progress', done: i, total: 5000, message: String(wallNow()) });
  const text =
    kind === 'events'
      ? JSON.stringify({ type: 'events', sub: 's1', events: evs })
      : JSON.stringify({ type: 'batch', frames: evs.map((e) => ({ type: 'event', sub: 's1', event: e })) });
  const buf = Buffer.from(text);
  const r = [];
  for (let k = 0; k < 30; k++) {
    const c0 = process.cpuUsage();
    for (let j = 0; j < 20; j++) if (!decodeFrame(buf.toString()).ok) return 'not understood by this version';
    const c = process.cpuUsage(c0);
    r.push((c.user + c.system) / (20 * 300));
  }
  return `${stats(r)}, ${Math.round(buf.length / 300)} bytes/event`;
}

(async () => {
  console.log(`W5 per-event CPU, ${root}`);
  console.log(`  worker, 1 watcher:       ${await worker(true)}`);
  console.log(`  worker, no watcher:      ${await worker(false)}`);
  console.log(`  watcher, events frame:   ${decode('events')}`);
  console.log(`  watcher, batch of event: ${decode('batch')}`);
})();
