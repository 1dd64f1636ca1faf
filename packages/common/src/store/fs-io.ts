/**
 * Crash-safe file primitives for FsStore. A file is written whole under tmp/, fsynced, then put in
 * place by link (fails if the name exists: an exclusive create) or rename (atomic replace), and the
 * directory is fsynced so the new name survives a power cut. Readers therefore see a complete file
 * or none, whatever moment a writer is SIGKILLed at.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

export function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Writes `data` to a new file under `tmpDir`, fsynced. Returns its path. */
export async function writeTmp(tmpDir: string, data: string): Promise<string> {
  const path = join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
  const fh = await fsp.open(path, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return path;
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Creates `target` with `data` unless it exists: true if this call created it. A tmp file left by
 * a crash between write and link is garbage, swept by age (FsStore.sweepTmp).
 */
export async function createExclusive(tmpDir: string, target: string, data: string, opts: { sync?: boolean } = {}): Promise<boolean> {
  const tmp = await writeTmp(tmpDir, data);
  try {
    await fsp.link(tmp, target);
  } catch (err) {
    if (errCode(err) === 'EEXIST') return false;
    throw err;
  } finally {
    await fsp.unlink(tmp).catch(() => undefined);
  }
  if (opts.sync ?? true) await fsyncDir(join(target, '..'));
  return true;
}

/** Atomically replaces (or creates) `target` with `data`. */
export async function replaceFile(tmpDir: string, target: string, data: string, opts: { sync?: boolean } = {}): Promise<void> {
  const tmp = await writeTmp(tmpDir, data);
  try {
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (opts.sync ?? true) await fsyncDir(join(target, '..'));
}

/** The parsed file, or undefined if it does not exist. */
export async function readJsonFile<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path);
    return true;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return false;
    throw err;
  }
}

export async function listDir(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return [];
    throw err;
  }
}

export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await fsp.unlink(path);
    return true;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** Random order, so claimers sharing a directory do not all race for the same first entry. */
export function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
