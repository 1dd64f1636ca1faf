/**
 * FsStore under SIGKILL: child processes create, claim, fulfil, queue and deliver on one directory
 * and are killed at random moments, hundreds of times. Whatever a child printed was acknowledged
 * by the store, so it must still be there; no file may be torn; no two live processes may hold
 * one job; a notification whose consumer died before `done` is delivered again.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { FsStore, type JsonValue } from '@taskmesh/common';
import { Proc, ROOT, tmpDir, waitFor } from './helpers';

const CHILD = join(ROOT, 'test', 'fixtures', 'fs-store-child.js');

function child(dir: string, mode: string): Proc {
  return new Proc(`fs-store-child ${mode}`, spawn(process.execPath, [CHILD, dir, mode], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Complete lines only: a kill can cut the last one short, and a cut line was never acknowledged. */
function lines(p: Proc): string[] {
  const all = p.output.split('\n');
  all.pop();
  return all;
}

/** Every file the store keeps (not tmp/, where writes are staged) parses as JSON. */
function assertNoTornFiles(dir: string): number {
  let count = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) {
        if (path !== join(dir, 'tmp')) walk(path);
        continue;
      }
      const text = readFileSync(path, 'utf8');
      expect(() => JSON.parse(text)).not.toThrow();
      count++;
    }
  };
  walk(dir);
  return count;
}

const key = (id: string, target: string) => `${id} ${target}`;

describe('FsStore survives SIGKILL', () => {
  const dirs: string[] = [];
  const storeDir = (label: string): string => {
    const parent = tmpDir(label);
    dirs.push(parent);
    return join(parent, 'store');
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('hundreds of kills mid-operation: nothing acknowledged is lost, nothing is torn, no job held twice', async () => {
    const dir = storeDir('fs-crash');
    const KILLS = 300;
    const MIN_KILLS = 200;
    const PARALLEL = 3;
    // About 40 s of kills; on a loaded machine (slower child start-up, less work per child) it goes
    // on until the minimum kills and operations are reached, within a hard bound, rather than
    // checking less.
    const soft = Date.now() + 40000;
    const hard = Date.now() + 70000;
    const procs: Proc[] = [];
    let kills = 0;
    let started = 0;
    const runOne = async () => {
      const p = child(dir, 'mix');
      started++;
      procs.push(p);
      await p.waitForOutput(/^ready$/m, 10000);
      // A random moment inside the work loop, so kills land in every kind of operation.
      const ms = 5 + Math.floor(Math.random() * 120);
      await new Promise((r) => setTimeout(r, ms));
      p.signal('SIGKILL');
      const { signal } = await p.exited;
      if (signal === 'SIGKILL') kills++;
    };
    // Enough happened for the checks below to mean something (asserted again after the kills).
    const enough = (): boolean => {
      const out = procs.flatMap(lines);
      const n = (prefix: string) => out.filter((l) => l.startsWith(prefix)).length;
      return n('created ') > 100 && n('fulfilled ') > 50 && n('queued ') > 20;
    };
    const lane = async () => {
      while (Date.now() < hard && (kills < MIN_KILLS || !enough() || (started < KILLS && Date.now() < soft))) await runOne();
    };
    await Promise.all(Array.from({ length: PARALLEL }, lane));
    expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);

    const out = procs.flatMap(lines);
    const errors = out.filter((l) => l.startsWith('ERROR') || l.startsWith('VIOLATION'));
    expect(errors).toEqual([]);
    const created = out.filter((l) => l.startsWith('created ')).map((l) => l.split(' ')[1] as string);
    const fulfilled = out.filter((l) => l.startsWith('fulfilled ')).map((l) => l.split(' ') as [string, string, string]);
    const queued = out.filter((l) => l.startsWith('queued ')).map((l) => l.split(' ') as [string, string, string]);
    const delivering = new Set(
      out
        .filter((l) => l.startsWith('delivering '))
        .map((l) => l.split(' '))
        .map(([, id, t]) => key(id!, t!)),
    );
    // Enough happened for the checks to mean something.
    expect(created.length).toBeGreaterThan(100);
    expect(fulfilled.length).toBeGreaterThan(50);
    expect(queued.length).toBeGreaterThan(20);

    const files = assertNoTornFiles(dir);
    expect(files).toBeGreaterThan(created.length);

    const store = new FsStore({ dir });
    try {
      for (const id of created) expect(await store.get(id)).toBeDefined();
      // A value is recorded once, and it is the one its fulfiller was told it recorded.
      expect(new Set(fulfilled.map(([, id]) => id)).size).toBe(fulfilled.length);
      for (const [, id, pid] of fulfilled) expect(await store.get(id)).toMatchObject({ state: 'FULFILLED', value: { by: Number(pid), id } });

      // Drain: leases of killed holders expire (1.5 s); then every job can be finished.
      await waitFor(
        'every job fulfilled',
        async () => {
          for (;;) {
            const c = await store.claim({ leaseMs: 5000 });
            if (!c) break;
            await store.fulfill(c.id, { by: 0, id: c.id }, c);
            await c.release();
          }
          return readdirSync(join(dir, 'pending')).length === 0;
        },
        15000,
        100,
      );
      for (const id of created) expect((await store.get(id))?.state).toBe('FULFILLED');

      // At least once: every acknowledged target was handed to a consumer, or is handed now.
      const drained = new Set<string>();
      const targetsLeft = () => readdirSync(join(dir, 'waiting')).some((id) => readdirSync(join(dir, 'waiting', id)).length > 0);
      // Polled: a dead consumer's notification lease has to run out first.
      await waitFor(
        'every notification delivered',
        async () => {
          for (;;) {
            const n = await store.pullNotification({ leaseMs: 5000 });
            if (!n) break;
            for (const t of n.waiting) drained.add(key(n.id, JSON.stringify(t)));
            await n.done(n.waiting);
          }
          return !targetsLeft();
        },
        15000,
        100,
      );
      const lost = queued.map(([, id, t]) => key(id, t)).filter((k) => !delivering.has(k) && !drained.has(k));
      expect(lost).toEqual([]);
    } finally {
      await store.close();
    }
  }, 120000);

  test('two processes claiming at once never both hold a job, and each job is fulfilled once', async () => {
    const dir = storeDir('fs-claim');
    const store = new FsStore({ dir });
    const JOBS = 60;
    for (let i = 0; i < JOBS; i++) await store.create({ i });
    const a = child(dir, 'claim-all');
    const b = child(dir, 'claim-all');
    await Promise.all([a.waitForOutput(/^ready$/m), b.waitForOutput(/^ready$/m)]);
    writeFileSync(join(dir, '..', `${basename(dir)}-go`), '');
    await Promise.all([a.waitForOutput(/^finished$/m, 30000), b.waitForOutput(/^finished$/m, 30000)]);
    const out = [...lines(a), ...lines(b)];
    expect(out.filter((l) => /^(VIOLATION|ERROR|compromised)/.test(l))).toEqual([]);
    const done = out.filter((l) => l.startsWith('fulfilled '));
    expect(done.length).toBe(JOBS);
    expect(new Set(done.map((l) => l.split(' ')[1])).size).toBe(JOBS);
    // Both really competed.
    expect(lines(a).filter((l) => l.startsWith('fulfilled ')).length).toBeGreaterThan(0);
    expect(lines(b).filter((l) => l.startsWith('fulfilled ')).length).toBeGreaterThan(0);
    await Promise.all([a.exited, b.exited]);
    await store.close();
  });

  test('a notification is delivered again when its consumer is killed before done', async () => {
    const dir = storeDir('fs-note');
    const store = new FsStore({ dir });
    const job = await store.create('req');
    await store.fulfill(job.id, 'value');
    const target: JsonValue = { hook: 'http://example/1' };
    await store.queue(job.id, target);
    const consumer = child(dir, 'pull-and-hang');
    const m = await consumer.waitForOutput(/^pulled (\S+) (.*)$/m);
    expect(m[1]).toBe(job.id);
    expect(JSON.parse(m[2]!)).toEqual([target]);
    // Held by a live consumer: nobody else gets it.
    expect(await store.pullNotification()).toBeUndefined();
    consumer.signal('SIGKILL');
    await consumer.exited;
    const again = await waitFor('redelivery', () => store.pullNotification(), 5000);
    expect(again.id).toBe(job.id);
    expect(again.value).toBe('value');
    expect(again.waiting).toEqual([target]);
    await again.done(again.waiting);
    expect(await store.pullNotification()).toBeUndefined();
    await store.close();
  });
});
