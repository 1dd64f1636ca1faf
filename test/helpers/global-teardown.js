// Fails the run if any output the tests produced holds a secret: the share_keys and Redis
// passwords the tests' configs used (noted by test/helpers/index.ts), the bodies of the test
// private keys, any private-key PEM block, or a URL that still carries a password.
'use strict';
const { existsSync, readdirSync, readFileSync, statSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..', '..');
const CERTS = join(ROOT, '.tmp', 'test-certs');

/** The first and last full base64 lines of every private key of the test certificates. */
function keyBodies() {
  const out = [];
  for (const set of existsSync(CERTS) ? readdirSync(CERTS) : []) {
    const dir = join(CERTS, set);
    if (!statSync(dir).isDirectory()) continue;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('-key.pem'))) {
      const lines = readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l.length >= 40 && !l.startsWith('-----'));
      for (const l of [lines[0], lines[lines.length - 2]]) if (l) out.push({ what: `private key body of ${set}/${f}`, value: l });
    }
  }
  return out;
}

function notedSecrets(dir) {
  const file = join(dir, 'secrets.txt');
  if (!existsSync(file)) return [];
  const values = new Set(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
  );
  return [...values].map((value) => ({ what: `secret "${value.slice(0, 3)}…" (${value.length} chars) from a test config`, value }));
}

const PATTERNS = [
  { what: 'a private-key PEM block', re: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/ },
  { what: 'a URL with a password', re: /\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/"]*:(?!\[redacted\]@)[^\s@/"]+@/i },
];

module.exports = async function globalTeardown() {
  const dir = process.env.TASKMESH_TEST_LOG_DIR;
  if (!dir || !existsSync(dir)) return;
  const secrets = [...notedSecrets(dir), ...keyBodies()];
  const found = [];
  let files = 0;
  let lines = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.log'))) {
    files++;
    const text = readFileSync(join(dir, f), 'utf8');
    const fileLines = text.split('\n');
    lines += fileLines.length;
    const hit = (what, i) => found.push(`  ${f}:${i + 1}: ${what}`);
    for (const s of secrets) {
      if (!text.includes(s.value)) continue;
      fileLines.forEach((l, i) => l.includes(s.value) && hit(s.what, i));
    }
    for (const p of PATTERNS) {
      if (!p.re.test(text)) continue;
      fileLines.forEach((l, i) => p.re.test(l) && hit(p.what, i));
    }
  }
  if (found.length > 0) {
    const shown = found.slice(0, 30).join('\n');
    throw new Error(
      `log redaction: ${found.length} captured line(s) hold a secret (output kept in ${dir}):\n${shown}${found.length > 30 ? `\n  … and ${found.length - 30} more` : ''}`,
    );
  }
  // Silent on success: the summary reporter's "tests: N passed, N failed" must stay the run's
  // closing line (CI reads it). TASKMESH_TEST_LOG_REPORT=1 prints what was checked.
  if (process.env.TASKMESH_TEST_LOG_REPORT)
    process.stderr.write(`log redaction: no secret in ${lines} captured lines of ${files} files (${secrets.length} secrets checked)\n`);
};
