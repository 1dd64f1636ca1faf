/**
 * Leases as files, for FsStore: `leases/<kind>/<job id>/<generation>`, each holding
 * `{token, expiresAt, pid}`. The highest generation is the lease; an older one means nothing.
 *
 * Taking a lease links generation n+1 into place, which fails if someone else linked it first, so
 * exactly one claimer wins each generation, and it may do so only once generation n is released
 * or expired. A dead holder's lease simply expires: no cleanup by the dead is ever needed. A
 * release or renewal rewrites the holder's own generation by rename, never the name of another.
 * Generations only grow while the directory exists, so a token is never reused.
 *
 * Lease files are not fsynced: after a power cut every holder is gone too, and a lease that
 * disappears is one that any claimer may take, which is what it would be after it expired.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

import { createExclusive, errCode, listDir, readJsonFile, replaceFile, unlinkIfExists } from './fs-io';
import { newToken, type LeaseBackend } from './lease';

interface LeaseFile {
  token: string;
  expiresAt: number;
  pid: number;
  released?: boolean;
}

export class FsLeases implements LeaseBackend {
  constructor(
    private readonly root: string,
    private readonly tmp: string,
  ) {}

  /** A new lease on `id`, or undefined while someone else holds a live one. */
  async acquire(id: string, leaseMs: number): Promise<{ token: string; expiresAt: number } | undefined> {
    const dir = join(this.root, id);
    for (let tries = 0; tries < 3; tries++) {
      const top = await this.top(dir);
      const now = Date.now();
      if (top && !top.file.released && top.file.expiresAt > now) return undefined;
      const gen = (top?.gen ?? 0) + 1;
      const lease: LeaseFile = { token: newToken(gen), expiresAt: now + leaseMs, pid: process.pid };
      try {
        await fsp.mkdir(dir, { recursive: true });
        if (!(await createExclusive(this.tmp, join(dir, String(gen)), JSON.stringify(lease), { sync: false }))) return undefined;
      } catch (err) {
        // The directory went away between mkdir and link: try again from the top.
        if (errCode(err) === 'ENOENT') continue;
        throw err;
      }
      // Older generations are dead weight now; removing them is only tidying.
      for (const name of await listDir(dir)) {
        const n = Number(name);
        if (Number.isInteger(n) && n < gen) await unlinkIfExists(join(dir, name)).catch(() => undefined);
      }
      return { token: lease.token, expiresAt: lease.expiresAt };
    }
    return undefined;
  }

  /** True if `token` is the current (highest) generation, live, released or expired. */
  async isCurrent(id: string, token: string): Promise<boolean> {
    const top = await this.top(join(this.root, id));
    return top?.file.token === token;
  }

  async renew(id: string, token: string, leaseMs: number): Promise<number | 'taken'> {
    const dir = join(this.root, id);
    const top = await this.top(dir);
    if (!top || top.file.token !== token || top.file.released) return 'taken';
    const expiresAt = Date.now() + leaseMs;
    await replaceFile(this.tmp, join(dir, String(top.gen)), JSON.stringify({ ...top.file, expiresAt }), { sync: false });
    return expiresAt;
  }

  async release(id: string, token: string): Promise<void> {
    const dir = join(this.root, id);
    const top = await this.top(dir);
    if (!top || top.file.token !== token) return;
    // Kept (marked released) rather than deleted, so the next claimer takes the next generation.
    await replaceFile(this.tmp, join(dir, String(top.gen)), JSON.stringify({ ...top.file, expiresAt: 0, released: true }), { sync: false });
  }

  private async top(dir: string): Promise<{ gen: number; file: LeaseFile } | undefined> {
    for (let tries = 0; tries < 5; tries++) {
      const gens = (await listDir(dir)).map(Number).filter((n) => Number.isInteger(n) && n > 0);
      if (gens.length === 0) return undefined;
      const gen = Math.max(...gens);
      const file = await readJsonFile<LeaseFile>(join(dir, String(gen)));
      // Removed by a newer holder between the listing and the read: look again.
      if (file) return { gen, file };
    }
    throw new Error(`lease directory ${dir} keeps changing`);
  }
}
