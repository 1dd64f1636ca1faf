'use strict';
/**
 * Why W5's latency cannot go below the task's loop (docs/performance.md, W5): inside one
 * synchronous 20 ms loop, a server writes a 4 KB line every 0.2 ms to a client in another process,
 * which notes when each arrives. Over plain TCP most writes arrive while the loop still runs (libuv
 * writes to the fd at once). Over TLS only the first does: Node completes every TLS write on a
 * later turn of the event loop (TLSWrap "simulates asynchronous finishing") and holds the next
 * writes in memory until then.
 *
 *   node bench/tls-sync-write.js            # both, 3 times each
 */
const tls = require('node:tls');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork, execFileSync } = require('node:child_process');

const now = () => performance.timeOrigin + performance.now();
const [, , mode, role, port, certs] = process.argv;

if (role === 'client') {
  const c = (f) => fs.readFileSync(path.join(certs, f));
  const s =
    mode === 'tls'
      ? tls.connect({ port: Number(port), host: '127.0.0.1', ca: c('ca.pem'), cert: c('watcher.pem'), key: c('watcher-key.pem'), servername: 'localhost' })
      : net.connect(Number(port), '127.0.0.1');
  let buf = '';
  const arrived = [];
  s.on('data', (d) => {
    const t = now();
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('END ')) return process.send({ arrived, end: Number(line.slice(4)) });
      arrived.push(t);
    }
  });
} else {
  const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-sync-write-'));
  execFileSync(process.execPath, [path.join(__dirname, '..', 'packages/common/bin/taskmesh.js'), 'certs', certs, '--names', 'worker,watcher'], {
    stdio: 'ignore',
  });
  const c = (f) => fs.readFileSync(path.join(certs, f));
  const once = (m) =>
    new Promise((resolve) => {
      const onSocket = (sock) => {
        sock.setNoDelay(true);
        setTimeout(() => {
          const t0 = performance.now();
          const pad = 'x'.repeat(4000);
          let last = -1;
          while (performance.now() - t0 < 20) {
            const p = performance.now();
            if (p - last >= 0.2) {
              sock.write(`${now()} ${pad}\n`);
              last = p;
            }
          }
          sock.write(`END ${now()}\n`);
        }, 300);
      };
      const srv =
        m === 'tls'
          ? tls.createServer({ cert: c('worker.pem'), key: c('worker-key.pem'), ca: c('ca.pem'), requestCert: true }, onSocket)
          : net.createServer(onSocket);
      srv.listen(0, '127.0.0.1', () => {
        const child = fork(__filename, [m, 'client', String(srv.address().port), certs]);
        child.on('message', ({ arrived, end }) => {
          child.kill();
          srv.close();
          resolve(`${m.padEnd(3)}: ${arrived.length} writes, ${arrived.filter((t) => t < end).length} arrived before the loop ended`);
        });
      });
    });
  (async () => {
    for (let r = 0; r < 3; r++) for (const m of ['tcp', 'tls']) console.log(await once(m));
    fs.rmSync(certs, { recursive: true, force: true });
  })();
}
