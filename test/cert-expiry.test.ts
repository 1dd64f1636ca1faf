/**
 * TLS checks a certificate only at the handshake. A connection whose peer certificate expires
 * while it is open is closed with 4008, and a reconnect with that certificate is refused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateLeaf, loadConfig, CloseCode } from '@taskmesh/common';
import { connect, createLogger } from '@taskmesh/common/internal';
import { Distributor } from '@taskmesh/distributor';
import { CERTS, cleanPrefix, distributorConfig, freePort, randomPrefix, SHARE_KEY } from './helpers';

describe('certificate expiry on an open connection', () => {
  const prefix = randomPrefix('certexp');
  let d: Distributor;
  afterAll(async () => {
    await d?.close();
    await cleanPrefix(prefix);
  });

  test('closed with 4008 when the peer certificate expires; reconnecting is refused', async () => {
    const port = await freePort();
    d = new Distributor(loadConfig('distributor', distributorConfig(prefix, port)));
    await d.start();
    const ca = { cert: readFileSync(join(CERTS, 'good', 'ca.pem'), 'utf8'), key: readFileSync(join(CERTS, 'good', 'ca-key.pem'), 'utf8') };
    const leaf = await generateLeaf('short-lived', ca, { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 5000) });
    const tls = { key: leaf.key, cert: leaf.cert, ca: ca.cert };
    const ch = await connect({
      id: 'short-lived-worker',
      role: 'worker',
      tls,
      shareKey: SHARE_KEY,
      host: '127.0.0.1',
      port,
      maxPayload: 1 << 20,
      allow: [],
      log: createLogger('worker', { id: 'test' }),
    });
    ch.startHealth(200, 3);
    const code = await new Promise<number>((resolve) => ch.on('close', (c) => resolve(c)));
    expect(code).toBe(CloseCode.CERT_EXPIRED);
    await expect(
      connect({
        id: 'short-lived-worker',
        role: 'worker',
        tls,
        shareKey: SHARE_KEY,
        host: '127.0.0.1',
        port,
        maxPayload: 1 << 20,
        allow: [],
        log: createLogger('worker', { id: 'test' }),
      }),
    ).rejects.toMatchObject({
      name: 'HandshakeError',
      code: 'HANDSHAKE_REFUSED',
    });
  });
});
