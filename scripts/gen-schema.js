#!/usr/bin/env node
// Writes docs/schema/*.schema.json from the TypeBox definitions of the frames and the envelope
// (packages/common/src/schema-json.ts). Run after a build: `pnpm run schema`.
// With --check it writes nothing and exits 1 when docs/schema differs (test/schema.test.ts checks
// the same, so a definition changed without regenerating fails the suite).
'use strict';
const { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { schemaFiles } = require('@taskmesh/common/internal');

const dir = join(__dirname, '..', 'docs', 'schema');
const check = process.argv.includes('--check');
const files = schemaFiles();
// Only *.schema.json files are generated; anything else in the folder is left alone.
const stale = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.schema.json') && !(f in files)) : [];
const changed = Object.keys(files).filter((f) => !existsSync(join(dir, f)) || readFileSync(join(dir, f), 'utf8') !== files[f]);

if (check) {
  for (const f of changed) console.error(`docs/schema/${f} is out of date`);
  for (const f of stale) console.error(`docs/schema/${f} is no longer generated`);
  if (changed.length + stale.length > 0) {
    console.error('run: pnpm run schema');
    process.exit(1);
  }
  console.log(`docs/schema is up to date (${Object.keys(files).length} files)`);
} else {
  mkdirSync(dir, { recursive: true });
  for (const f of changed) writeFileSync(join(dir, f), files[f]);
  for (const f of stale) unlinkSync(join(dir, f));
  console.log(`docs/schema: ${changed.length} written, ${stale.length} removed, ${Object.keys(files).length - changed.length} unchanged`);
}
