/**
 * Development certificates: one CA and one leaf per name, each leaf valid for TLS server and
 * client use with SANs localhost and 127.0.0.1. Any standard PKI works as well; this only saves
 * a new user the openssl incantations.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GenerateOptions {
  names?: string[];
  days?: number;
  /** Leaf validity start, for tests that need an expired certificate. */
  notBefore?: Date;
  notAfter?: Date;
}

export const DEFAULT_CERT_NAMES = ['distributor', 'worker', 'watcher', 'client'];

export interface GeneratedFiles {
  ca: string;
  caKey: string;
  leaves: Record<string, { cert: string; key: string }>;
}

/**
 * selfsigned (and the X.509 libraries under it) is loaded only when certificates are made: every
 * daemon imports this package, and loading it costs each process several MiB of memory.
 */
function selfsigned(): typeof import('selfsigned') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('selfsigned') as typeof import('selfsigned');
}

function validity(days: number, notBefore?: Date, notAfter?: Date) {
  const start = notBefore ?? new Date(Date.now() - 60_000);
  const end = notAfter ?? new Date(start.getTime() + days * 86_400_000);
  return { notBeforeDate: start, notAfterDate: end };
}

export async function generateCa(commonName = 'taskmesh dev CA', days = 3650): Promise<{ cert: string; key: string }> {
  const pems = await selfsigned().generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...validity(days),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

export async function generateLeaf(name: string, ca: { cert: string; key: string }, opts: GenerateOptions = {}): Promise<{ cert: string; key: string }> {
  const pems = await selfsigned().generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...validity(opts.days ?? 825, opts.notBefore, opts.notAfter),
    ca: { cert: ca.cert, key: ca.key },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: name },
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * Writes `ca.pem`, `ca-key.pem` and `<name>.pem` / `<name>-key.pem` for each name into dir.
 * An existing CA in dir is reused, so new leaves join the same mesh.
 */
export async function generateDevCerts(dir: string, opts: GenerateOptions = {}): Promise<GeneratedFiles> {
  mkdirSync(dir, { recursive: true });
  const caPath = join(dir, 'ca.pem');
  const caKeyPath = join(dir, 'ca-key.pem');
  let ca: { cert: string; key: string };
  if (existsSync(caPath) && existsSync(caKeyPath)) {
    ca = { cert: readFileSync(caPath, 'utf8'), key: readFileSync(caKeyPath, 'utf8') };
  } else {
    ca = await generateCa();
    writeFileSync(caPath, ca.cert);
    writeFileSync(caKeyPath, ca.key, { mode: 0o600 });
  }
  const leaves: GeneratedFiles['leaves'] = {};
  for (const name of opts.names ?? DEFAULT_CERT_NAMES) {
    const leaf = await generateLeaf(name, ca, opts);
    const cert = join(dir, `${name}.pem`);
    const key = join(dir, `${name}-key.pem`);
    writeFileSync(cert, leaf.cert);
    writeFileSync(key, leaf.key, { mode: 0o600 });
    leaves[name] = { cert, key };
  }
  return { ca: caPath, caKey: caKeyPath, leaves };
}
