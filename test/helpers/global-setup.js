// Generates the test certificates once per run: a CA with leaves, a second CA, and an expired leaf
// signed by the first CA.
'use strict';
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

module.exports = async function globalSetup() {
  const { generateDevCerts, generateLeaf } = require('@taskmesh/common');
  const dir = join(__dirname, '..', '..', '.tmp', 'test-certs');
  if (existsSync(join(dir, 'done'))) return;
  mkdirSync(dir, { recursive: true });
  await generateDevCerts(join(dir, 'good'), { names: ['distributor', 'worker', 'watcher', 'client'] });
  await generateDevCerts(join(dir, 'other'), { names: ['worker'] });
  const ca = { cert: readFileSync(join(dir, 'good', 'ca.pem'), 'utf8'), key: readFileSync(join(dir, 'good', 'ca-key.pem'), 'utf8') };
  const expired = await generateLeaf('worker', ca, { notBefore: new Date(Date.now() - 10 * 86400000), notAfter: new Date(Date.now() - 86400000) });
  mkdirSync(join(dir, 'expired'), { recursive: true });
  writeFileSync(join(dir, 'expired', 'worker.pem'), expired.cert);
  writeFileSync(join(dir, 'expired', 'worker-key.pem'), expired.key);
  writeFileSync(join(dir, 'done'), '');
};
