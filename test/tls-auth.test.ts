/**
 * SPEC section 6: every listening socket is mutual TLS against the configured CA, and the handshake
 * proves the share_key. An in-process distributor refuses a client without a certificate, with one
 * from another CA, with an expired one, and one with a wrong share_key (close code 4001); a client
 * that checks the server against the wrong CA gives up by itself. After all that it still serves a
 * real worker.
 */
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { CloseCode, HandshakeError, TaskClient, loadConfig, type TlsMaterial } from '@taskmesh/common';
import { connect, createLogger } from '@taskmesh/common/internal';
import { Distributor } from '@taskmesh/distributor';
import { createWorker, type Worker } from '@taskmesh/worker';
import {
  certFiles,
  cleanPrefix,
  clientConfig,
  distributorConfig,
  freePort,
  randomPrefix,
  redis,
  SHARE_KEY,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type RoleFiles,
  findLogs,
  hasLog,
} from './helpers';

const pem = (files: RoleFiles): TlsMaterial => ({
  key: readFileSync(files.key, 'utf8'),
  cert: readFileSync(files.cert, 'utf8'),
  ca: readFileSync(files.ca, 'utf8'),
});

describe('mutual TLS and share_key', () => {
  const prefix = randomPrefix('tls');
  let port: number;
  let distributor: Distributor;
  let worker: Worker | undefined;
  let client: TaskClient | undefined;
  const log = createLogger('worker', { id: 'tls-auth-test' });
  /** What the distributor (in this process) writes on stderr: its refusal reasons. */
  let stderr = '';
  let stderrSpy: jest.SpyInstance;

  const good = pem(certFiles('worker'));
  const goodCa = good.ca;

  /** Tries the real client handshake with the given TLS material and share_key. */
  const tryConnect = async (tls: Partial<TlsMaterial>, shareKey = SHARE_KEY, id = 'tls-probe') =>
    connect({ id, role: 'worker', tls: tls as TlsMaterial, shareKey, host: '127.0.0.1', port, maxPayload: 1 << 20, allow: [], log });

  /** A raw WebSocket: did it ever open, did the server send any frame, how did it end? */
  const rawAttempt = (tls: Partial<TlsMaterial>) =>
    new Promise<{ opened: boolean; frames: number; error: string | null }>((resolve) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { key: tls.key, cert: tls.cert, ca: tls.ca, rejectUnauthorized: true, handshakeTimeout: 5000 });
      let opened = false;
      let frames = 0;
      let error: string | null = null;
      ws.on('open', () => (opened = true));
      ws.on('message', () => frames++);
      ws.on('error', (err) => (error = (err as NodeJS.ErrnoException).code ?? err.message));
      ws.on('close', () => resolve({ opened, frames, error }));
    });

  beforeAll(async () => {
    const orig = process.stderr.write.bind(process.stderr);
    stderrSpy = jest.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
      stderr += chunk.toString();
      return (orig as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write);
    port = await freePort();
    distributor = new Distributor(loadConfig('distributor', distributorConfig(prefix, port)));
    await distributor.start();
  });

  afterAll(async () => {
    await worker?.close();
    await distributor?.close();
    await client?.close();
    stderrSpy?.mockRestore();
    await cleanPrefix(prefix);
  });

  test('control: a correctly certified client with the right share_key is accepted', async () => {
    const ch = await tryConnect(good, SHARE_KEY, 'tls-control');
    expect(ch.peerId).toBe(distributor.id);
    expect(ch.open).toBe(true);
    ch.close();
    await waitFor('control channel closed', () => !ch.open);
  });

  test('a TLS client without a client certificate is refused', async () => {
    const before = stderr.length;
    await expect(tryConnect({ ca: goodCa })).rejects.toMatchObject({ name: 'HandshakeError', code: 'HANDSHAKE_REFUSED' });
    const raw = await rawAttempt({ ca: goodCa });
    expect(raw.opened).toBe(false);
    expect(raw.frames).toBe(0);
    await waitFor('refusal logged', () => hasLog(stderr.slice(before), 'refused connection', { reason: /client certificate refused/ }));
  });

  test('a client certificate from another CA is refused', async () => {
    // Its own cert and key come from the other CA; it still trusts the real server, so the
    // refusal is the server's doing.
    const other = pem(certFiles('worker', 'other'));
    const tls = { key: other.key, cert: other.cert, ca: goodCa };
    const before = stderr.length;
    await expect(tryConnect(tls)).rejects.toMatchObject({ name: 'HandshakeError', code: 'HANDSHAKE_REFUSED' });
    const raw = await rawAttempt(tls);
    expect(raw.opened).toBe(false);
    expect(raw.frames).toBe(0);
    await waitFor('refusal logged', () => hasLog(stderr.slice(before), 'refused connection', { reason: /client certificate refused/ }));
  });

  test('an expired client certificate (signed by the right CA) is refused', async () => {
    const tls = pem(certFiles('worker', 'expired'));
    expect(tls.ca).toBe(goodCa);
    const before = stderr.length;
    await expect(tryConnect(tls)).rejects.toMatchObject({ name: 'HandshakeError', code: 'HANDSHAKE_REFUSED' });
    const raw = await rawAttempt(tls);
    expect(raw.opened).toBe(false);
    expect(raw.frames).toBe(0);
    await waitFor('refusal logged', () => hasLog(stderr.slice(before), 'refused connection', { reason: /CERT_HAS_EXPIRED/ }));
  });

  test('a correctly certified client with a wrong share_key is closed with 4001', async () => {
    const before = stderr.length;
    const err = await tryConnect(good, 'not-the-share-key').then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ code: 'SHARE_KEY_MISMATCH', closeCode: CloseCode.AUTH_FAILED });
    expect(CloseCode.AUTH_FAILED).toBe(4001);
    await waitFor('refusal logged', () => hasLog(stderr.slice(before), 'refused peer: wrong share_key'));
    // The secret itself never reaches the log.
    expect(stderr).not.toContain(SHARE_KEY);
    expect(stderr).not.toContain('not-the-share-key');
  });

  test('a client that verifies the server against the wrong CA fails', async () => {
    const otherCa = readFileSync(certFiles('worker', 'other').ca, 'utf8');
    expect(otherCa).not.toBe(goodCa);
    const err = await tryConnect({ key: good.key, cert: good.cert, ca: otherCa }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ code: 'CERT_REJECTED', closeCode: null });
    // The TLS layer's own reason (CERT_SIGNATURE_FAILURE, UNABLE_TO_VERIFY_LEAF_SIGNATURE...) rides along.
    expect((err as HandshakeError).tlsCode).toMatch(/CERT|UNABLE_TO_VERIFY|SELF_SIGNED/);
  });

  test('allow-lists: a listed worker name is accepted; a client refuses a server whose name is not listed', async () => {
    const allowPrefix = randomPrefix('tlsallow');
    const p = await freePort();
    const listed = new Distributor(loadConfig('distributor', distributorConfig(allowPrefix, p, { id: `allow-${p}`, allow: { workers: ['worker'] } })));
    await listed.start();
    const probe = (allow: string[], id: string) =>
      connect({ id, role: 'worker', tls: good, shareKey: SHARE_KEY, host: '127.0.0.1', port: p, maxPayload: 1 << 20, allow, log });
    try {
      const ch = await probe([], 'tls-allow1');
      expect(ch.peerId).toBe(listed.id);
      ch.close();
      await expect(probe(['not-the-distributor'], 'tls-allow2')).rejects.toMatchObject({ name: 'HandshakeError', code: 'PEER_NOT_ALLOWED' });
      const ok = await probe(['distributor'], 'tls-allow3');
      ok.close();
    } finally {
      await listed.close();
      await cleanPrefix(allowPrefix);
    }
  });

  // Regression: the upgrade of a socket already refused for its names used to throw a TypeError
  // (null peer certificate) that killed the distributor (fixed in 951a1db).
  test('a worker whose certificate name is not in allow.workers is refused and the distributor bin survives', async () => {
    const allowPrefix = randomPrefix('tlsallowbin');
    const p = await freePort();
    const dir = tmpDir('tls-allow');
    const d = spawnBin(
      'distributor',
      ['--config', writeConfig(dir, 'd', distributorConfig(allowPrefix, p, { id: `allowbin-${p}`, allow: { workers: ['someone-else'] } }))],
      {},
      'allow-d',
    );
    const r = redis();
    try {
      await d.waitForLog('started');
      await expect(
        connect({ id: 'tls-allow-bin', role: 'worker', tls: good, shareKey: SHARE_KEY, host: '127.0.0.1', port: p, maxPayload: 1 << 20, allow: [], log }),
      ).rejects.toThrow();
      await d.waitForLog('refused connection', { reason: /not in the allow-list/ });
      // Alive means: its heartbeat keeps moving after the refusal (or it is gone).
      const beat = async () => Number(await r.hget(`${allowPrefix}distributor:allowbin-${p}`, 'updated_at'));
      const first = await beat();
      await waitFor('heartbeat after the refusal, or exit', async () => !d.running || (await beat()) > first + 250, 5000);
      expect(d.output).not.toMatch(/TypeError/);
      expect(d.running).toBe(true);
    } finally {
      r.disconnect();
      await d.stop();
      await cleanPrefix(allowPrefix);
    }
  });

  test('after all refusals the distributor still serves a real worker', async () => {
    // None of the refused probes ever became a worker channel.
    expect(findLogs(stderr, 'worker connected', { worker: /^tls-probe/ })).toEqual([]);
    const wcfg = loadConfig('worker', workerConfig(prefix, [port], { id: 'tls-w1' }));
    worker = createWorker(wcfg);
    worker.addTask('echo', (c) => c);
    await worker.start();
    await waitFor('worker connected', () => hasLog(stderr, 'worker connected', { worker: 'tls-w1' }));
    client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
    const id = await client.submit('echo', { hello: 'tls' });
    const rec = await client.wait(id, { timeoutMs: 15000 });
    expect(rec.state).toBe('END');
    expect(rec.result).toEqual({ hello: 'tls' });
    expect(rec.worker).toBe('tls-w1');
    expect(rec.distributor).toBe(distributor.id);
  });
});
