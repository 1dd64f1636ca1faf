// Generates the test certificates once per run: a CA with leaves, a second CA, and an expired leaf
// signed by the first CA. Makes this run's log folder (see global-teardown.js).
'use strict';
const { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

/** Log folders of earlier runs kept for a look after a failure; older ones are removed. */
const KEEP_RUNS = 3;

function makeLogDir(root) {
  const base = join(root, '.tmp', 'test-logs');
  mkdirSync(base, { recursive: true });
  const old = readdirSync(base).sort();
  for (const d of old.slice(0, Math.max(0, old.length - KEEP_RUNS + 1))) rmSync(join(base, d), { recursive: true, force: true });
  const dir = join(base, `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  mkdirSync(dir);
  // Jest's workers are started after this and inherit it; the helpers (test/helpers/index.ts)
  // and capture-stderr.js write there. Not a TASKMESH_* key a bin reads: binEnv() drops it anyway.
  process.env.TASKMESH_TEST_LOG_DIR = dir;
}

module.exports = async function globalSetup() {
  makeLogDir(join(__dirname, '..', '..'));
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
