/**
 * Allow-lists of peer certificate names: a distributor with `allow.workers` refuses a worker whose
 * certificate, though signed by the right CA, names someone else; a worker with
 * `allow.distributors` refuses to talk to a distributor whose certificate is not listed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateLeaf, loadConfig } from '@taskmesh/common';
import { connect, createLogger } from '@taskmesh/common/internal';
import { Distributor } from '@taskmesh/distributor';
import { CERTS, certFiles, cleanPrefix, distributorConfig, freePort, randomPrefix, SHARE_KEY } from './helpers';

const log = createLogger('worker', { id: 'test' });
const pem = (p: string) => readFileSync(p, 'utf8');

describe('certificate name allow-lists', () => {
  const prefix = randomPrefix('allow');
  let d: Distributor;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    d = new Distributor(loadConfig('distributor', distributorConfig(prefix, port, { allow: { workers: ['worker'] } })));
    await d.start();
  });
  afterAll(async () => {
    await d.close();
    await cleanPrefix(prefix);
  });

  const good = certFiles('worker');
  const goodTls = () => ({ key: pem(good.key), cert: pem(good.cert), ca: pem(good.ca) });
  const opts = (tls: { key: string; cert: string; ca: string }, allow: string[] = []) => ({
    id: 'w',
    role: 'worker' as const,
    tls,
    shareKey: SHARE_KEY,
    host: '127.0.0.1',
    port,
    maxPayload: 1 << 20,
    allow,
    log,
  });

  test('a listed worker name is accepted', async () => {
    const ch = await connect(opts(goodTls()));
    expect(ch.open).toBe(true);
    ch.close();
  });

  test('a certificate from the right CA with an unlisted name is refused', async () => {
    const ca = { cert: pem(join(CERTS, 'good', 'ca.pem')), key: pem(join(CERTS, 'good', 'ca-key.pem')) };
    const intruder = await generateLeaf('intruder', ca);
    // The leaf also carries SAN localhost/127.0.0.1, which are not in the list either.
    await expect(connect(opts({ key: intruder.key, cert: intruder.cert, ca: ca.cert }))).rejects.toMatchObject({
      name: 'HandshakeError',
      code: 'HANDSHAKE_REFUSED',
    });
    // The distributor still serves listed workers.
    const ch = await connect(opts(goodTls()));
    expect(ch.open).toBe(true);
    ch.close();
  });

  test('a client refuses a server whose certificate is not in its allow-list', async () => {
    await expect(connect(opts(goodTls(), ['some-other-distributor']))).rejects.toMatchObject({ name: 'HandshakeError', code: 'PEER_NOT_ALLOWED' });
    const ch = await connect(opts(goodTls(), ['distributor']));
    expect(ch.open).toBe(true);
    ch.close();
  });
});
