/**
 * Typed errors with stable codes (docs/protocol.md, "Error codes"): each way a handshake fails has
 * its own HandshakeError code, on the client (thrown by `connect`) and on the server (its close
 * code); Lua status replies map to meanings in one table, and a reply outside it is a ScriptError.
 * Tests assert codes, never message text.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:https';
import { WebSocket, WebSocketServer } from 'ws';
import { CloseCode, HandshakeError, HANDSHAKE_ERROR_CODES, PROTOCOL_VERSION, ScriptError, TaskmeshError, type TlsMaterial } from '@taskmesh/common';
import { connect, createLogger, listen, scriptReply, SCRIPT_REPLIES, type MeshServer, type ScriptName } from '@taskmesh/common/internal';
import { certFiles, freePort, SHARE_KEY, waitFor, type RoleFiles } from './helpers';

const pem = (files: RoleFiles): TlsMaterial => ({
  key: readFileSync(files.key, 'utf8'),
  cert: readFileSync(files.cert, 'utf8'),
  ca: readFileSync(files.ca, 'utf8'),
});
const log = createLogger('errors-test');
const workerTls = pem(certFiles('worker'));
const watcherTls = pem(certFiles('watcher'));

const caught = <T>(p: Promise<T>): Promise<unknown> =>
  p.then(
    () => null,
    (e: unknown) => e,
  );

describe('handshake errors, server side (a real listener)', () => {
  let server: MeshServer;
  let port: number;
  const channels: Array<{ close(): void }> = [];

  beforeAll(async () => {
    server = await listen({
      id: 'errors-d',
      role: 'distributor',
      tls: pem(certFiles('distributor')),
      shareKey: SHARE_KEY,
      host: '127.0.0.1',
      port: 0,
      maxPayload: 1 << 20,
      allow: [],
      accept: ['worker'],
      log,
      onChannel: (ch) => channels.push(ch),
    });
    port = server.port;
  });
  afterAll(async () => {
    for (const ch of channels) ch.close();
    await server.close();
  });

  const dial = (tls: TlsMaterial, role: 'worker' | 'watcher', shareKey = SHARE_KEY) =>
    connect({ id: `errors-${role}`, role, tls, shareKey, host: '127.0.0.1', port, maxPayload: 1 << 20, allow: [], log });

  /** A raw client: waits for hello, sends `auth` as given, and reports the close code. */
  const rawAuth = (auth: Record<string, unknown> | string) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { key: workerTls.key, cert: workerTls.cert, ca: workerTls.ca });
      ws.on('error', reject);
      ws.once('message', () => ws.send(typeof auth === 'string' ? auth : JSON.stringify(auth)));
      ws.on('close', (code) => resolve(code));
    });

  test('control: the right role and share_key are accepted', async () => {
    const ch = await dial(workerTls, 'worker');
    expect(ch.open).toBe(true);
    ch.close();
  });

  test('a wrong share_key: SHARE_KEY_MISMATCH, close 4001', async () => {
    const err = await caught(dial(workerTls, 'worker', 'not-the-key'));
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ code: 'SHARE_KEY_MISMATCH', closeCode: CloseCode.AUTH_FAILED });
  });

  test('a role the server does not accept: ROLE_NOT_ACCEPTED, close 4003', async () => {
    const err = await caught(dial(watcherTls, 'watcher'));
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ code: 'ROLE_NOT_ACCEPTED', closeCode: CloseCode.NOT_ALLOWED });
  });

  test('an auth of another protocol version is closed with 4004', async () => {
    const code = await rawAuth({ type: 'auth', v: PROTOCOL_VERSION + 1, role: 'worker', id: 'future', nonce: 'n'.repeat(32), mac: '0'.repeat(64) });
    expect(code).toBe(CloseCode.PROTOCOL_ERROR);
  });

  test('an invalid frame instead of auth is closed with 4002 at once', async () => {
    const code = await rawAuth('{"type":"auth"}');
    expect(code).toBe(CloseCode.HANDSHAKE_TIMEOUT);
  });
});

describe('TLS refusals on the server: the code decides the refused-connections reason', () => {
  test('a certificate from another CA is CERT_REJECTED (certificate); an unlisted name is PEER_NOT_ALLOWED (allow_list)', async () => {
    const reasons: string[] = [];
    const server = await listen({
      id: 'errors-allow-d',
      role: 'distributor',
      tls: pem(certFiles('distributor')),
      shareKey: SHARE_KEY,
      host: '127.0.0.1',
      port: 0,
      maxPayload: 1 << 20,
      allow: ['worker'],
      accept: ['worker'],
      log,
      onRefused: (reason) => reasons.push(reason),
      onChannel: (ch) => ch.close(),
    });
    const dial = (tls: TlsMaterial) =>
      connect({ id: 'errors-refused', role: 'worker', tls, shareKey: SHARE_KEY, host: '127.0.0.1', port: server.port, maxPayload: 1 << 20, allow: [], log });
    try {
      const other = pem(certFiles('worker', 'other'));
      // Its own cert from the other CA; it trusts the real server, so the refusal is the server's.
      expect(await caught(dial({ key: other.key, cert: other.cert, ca: workerTls.ca }))).toMatchObject({ name: 'HandshakeError', code: 'HANDSHAKE_REFUSED' });
      await waitFor('the CA refusal counted', () => reasons.length === 1);
      expect(await caught(dial(watcherTls))).toMatchObject({ name: 'HandshakeError', code: 'HANDSHAKE_REFUSED' });
      await waitFor('the allow-list refusal counted', () => reasons.length === 2);
      expect(reasons).toEqual(['certificate', 'allow_list']);
    } finally {
      await server.close();
    }
  });
});

describe('handshake errors, client side (a scripted server)', () => {
  let https: Server;
  let wss: WebSocketServer;
  let port: number;
  /** What the scripted server does with each new connection. */
  let script: (ws: WebSocket) => void = () => undefined;

  beforeAll(async () => {
    const d = pem(certFiles('distributor'));
    https = createServer({ key: d.key, cert: d.cert, ca: d.ca, requestCert: true, rejectUnauthorized: false });
    wss = new WebSocketServer({ server: https });
    wss.on('connection', (ws) => script(ws));
    port = await freePort();
    await new Promise<void>((resolve) => https.listen(port, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    await new Promise<void>((resolve) => https.close(() => resolve()));
  });

  const dial = (allow: string[] = []) =>
    connect({ id: 'errors-client', role: 'worker', tls: workerTls, shareKey: SHARE_KEY, host: '127.0.0.1', port, maxPayload: 1 << 20, allow, log });
  const hello = (v = PROTOCOL_VERSION) => JSON.stringify({ type: 'hello', v, role: 'distributor', id: 'fake-d', nonce: 'n'.repeat(32) });

  test.each([
    [CloseCode.HANDSHAKE_TIMEOUT, 'HANDSHAKE_TIMEOUT'],
    [CloseCode.AUTH_FAILED, 'SHARE_KEY_MISMATCH'],
    [CloseCode.NOT_ALLOWED, 'ROLE_NOT_ACCEPTED'],
    [CloseCode.PROTOCOL_ERROR, 'PROTOCOL_VERSION'],
    [CloseCode.GOING_AWAY, 'HANDSHAKE_REFUSED'],
  ])('a server that closes with %i during the handshake: %s', async (closeCode, code) => {
    script = (ws) => ws.close(closeCode, 'scripted');
    const err = await caught(dial());
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ code, closeCode });
  });

  test('a hello of another protocol version: PROTOCOL_VERSION', async () => {
    script = (ws) => ws.send(hello(PROTOCOL_VERSION + 1));
    expect(await caught(dial())).toMatchObject({ name: 'HandshakeError', code: 'PROTOCOL_VERSION', closeCode: null });
  });

  test('a welcome without the server proof: SHARE_KEY_MISMATCH', async () => {
    script = (ws) => {
      ws.send(hello());
      ws.once('message', () => ws.send(JSON.stringify({ type: 'welcome', id: 'fake-d', mac: '0'.repeat(64) })));
    };
    expect(await caught(dial())).toMatchObject({ name: 'HandshakeError', code: 'SHARE_KEY_MISMATCH', closeCode: null });
  });

  test('an error frame or another frame instead of welcome: HANDSHAKE_REFUSED', async () => {
    script = (ws) => {
      ws.send(hello());
      ws.once('message', () => ws.send(JSON.stringify({ type: 'error', code: 'BAD_FRAME', message: 'no' })));
    };
    expect(await caught(dial())).toMatchObject({ name: 'HandshakeError', code: 'HANDSHAKE_REFUSED' });
    script = (ws) => ws.send(JSON.stringify({ type: 'ping', ts: 1 }));
    expect(await caught(dial())).toMatchObject({ name: 'HandshakeError', code: 'HANDSHAKE_REFUSED' });
  });

  test('a server certificate not in the allow-list: PEER_NOT_ALLOWED', async () => {
    script = (ws) => ws.send(hello());
    expect(await caught(dial(['someone-else']))).toMatchObject({ name: 'HandshakeError', code: 'PEER_NOT_ALLOWED' });
  });

  test('nobody listening is not a handshake error: the socket error passes as it is', async () => {
    const closed = await freePort();
    const err = await caught(
      connect({
        id: 'errors-client',
        role: 'worker',
        tls: workerTls,
        shareKey: SHARE_KEY,
        host: '127.0.0.1',
        port: closed,
        maxPayload: 1 << 20,
        allow: [],
        log,
      }),
    );
    expect(err).not.toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ code: 'ECONNREFUSED' });
  });

  test('every handshake code is a TaskmeshError code', () => {
    const e = new HandshakeError('CERT_REJECTED', 'x', { tlsCode: 'CERT_HAS_EXPIRED' });
    expect(e).toBeInstanceOf(TaskmeshError);
    expect(e).toMatchObject({ name: 'HandshakeError', code: 'CERT_REJECTED', tlsCode: 'CERT_HAS_EXPIRED', closeCode: null });
    expect(new Set(HANDSHAKE_ERROR_CODES).size).toBe(HANDSHAKE_ERROR_CODES.length);
  });
});

describe('Lua replies map to meanings in one table', () => {
  test('every table entry names a script that exists', () => {
    const scripts = readdirSync(join(__dirname, '..', 'packages', 'common', 'lua'))
      .map((f) => /^([a-z-]+?)(?:-\d+)?\.lua$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined);
    for (const name of Object.keys(SCRIPT_REPLIES)) expect(scripts).toContain(name);
  });

  test('documented replies map to their meaning', () => {
    expect(scriptReply('finish', 0)).toBe('refused');
    expect(scriptReply('finish', 4)).toBe('retry');
    expect(scriptReply('requeue', 2)).toBe('cancelled');
    expect(scriptReply('assign', -1)).toBe('taken');
    expect(scriptReply('assign', -2)).toBe('not-queued');
    expect(scriptReply('heartbeat', -1)).toBe('unregistered');
    expect(scriptReply('cancel', '')).toBe('unknown');
    expect(scriptReply('cancel', 'RETRY')).toBe('RETRY');
    expect(scriptReply('cancel', 'RUNNING')).toBe('RUNNING');
    expect(scriptReply('retry', 'QUEUED')).toBe('QUEUED');
    expect(scriptReply('store-fulfill', 'NOTFOUND')).toBe('NOTFOUND');
  });

  test.each<[ScriptName, unknown]>([
    ['finish', 7],
    ['requeue', -1],
    ['start', '11'],
    ['cancel', 'DONE'],
    ['store-fulfill', 1],
    ['promote', null],
    ['heartbeat', [1]],
  ])('%s replying %p is SCRIPT_REPLY_INVALID, not a guess', (script, raw) => {
    let err: unknown;
    try {
      scriptReply(script, raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScriptError);
    expect(err).toMatchObject({ code: 'SCRIPT_REPLY_INVALID', script });
  });
});
