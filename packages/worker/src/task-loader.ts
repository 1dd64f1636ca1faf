/**
 * Loads task functions for the worker bin: a module (default export `{ name: fn }` or
 * `(worker) => void`), or a folder where each .js/.mjs/.cjs file is one task named after the file
 * (cleaned to [A-Za-z0-9_-]) and reloaded when it changes (the background-jobs seed). A module
 * that fails to load is logged and skipped; it never takes the worker down. A folder module may
 * export `unload` (or the seed's `Unload`): it is called, and awaited, before the module is
 * reloaded or removed, so it can release what it holds (timers, connections, require cache).
 */
import { existsSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '@taskmesh/common/internal';
import type { TaskFunction, Worker } from './worker';

const EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);

export function cleanTaskName(file: string): string {
  return basename(file, extname(file))
    .replace(/[^A-Za-z0-9_-]/g, '')
    .slice(0, 128);
}

async function importFresh(path: string, version: number): Promise<unknown> {
  // CommonJS files live in require's cache; drop them so an edited file is read again.
  try {
    delete require.cache[require.resolve(path)];
  } catch {
    // not resolvable through require: an ES module
  }
  const url = pathToFileURL(path);
  if (version > 0) url.searchParams.set('v', String(version));
  return import(url.href);
}

function defaultExport(mod: unknown): unknown {
  let m = mod as { default?: unknown };
  // CommonJS loaded through import(): module.exports is `default` (sometimes nested once more).
  for (let i = 0; i < 2 && m && typeof m === 'object' && 'default' in m; i++) m = m.default as { default?: unknown };
  return m;
}

type Unload = () => unknown;

/** The module's `unload` (or `Unload`) function, on its default export or its namespace. */
function findUnload(mod: unknown, exp: unknown): Unload | undefined {
  for (const o of [exp, mod, (mod as { default?: unknown } | undefined)?.default]) {
    if (!o || (typeof o !== 'object' && typeof o !== 'function')) continue;
    const r = o as { unload?: unknown; Unload?: unknown };
    const fn = r.unload ?? r.Unload;
    if (typeof fn === 'function') return fn as Unload;
  }
  return undefined;
}

export interface LoadedTasks {
  names: string[];
  close(): void;
}

export async function loadTasks(worker: Worker, path: string, log: Logger): Promise<LoadedTasks> {
  const full = resolve(path);
  if (!existsSync(full)) throw new Error(`--tasks ${path}: no such file or folder`);
  if (statSync(full).isDirectory()) return loadFolder(worker, full, log);
  const exp = defaultExport(await importFresh(full, 0));
  if (typeof exp === 'function') {
    await (exp as (w: Worker) => unknown)(worker);
  } else if (exp && typeof exp === 'object') {
    for (const [name, fn] of Object.entries(exp as Record<string, unknown>)) {
      if (typeof fn === 'function') worker.addTask(name, fn as TaskFunction);
    }
  } else {
    throw new Error(`--tasks ${path}: the module must export an object { name: fn } or a function (worker) => void`);
  }
  return { names: worker.taskNames, close: () => undefined };
}

async function loadFolder(worker: Worker, dir: string, log: Logger): Promise<LoadedTasks> {
  const owned = new Map<string, string>(); // task name -> file
  const unloads = new Map<string, Unload>(); // task name -> the loaded module's unload
  let version = 0;
  const unload = async (name: string): Promise<void> => {
    const fn = unloads.get(name);
    unloads.delete(name);
    if (!fn) return;
    try {
      await fn();
    } catch (err) {
      log.warn('task module unload failed', { name, reason: (err as Error).message });
    }
  };
  const loadFile = async (file: string): Promise<void> => {
    const name = cleanTaskName(file);
    const path = join(dir, file);
    if (!name) return;
    if (!existsSync(path)) {
      if (owned.get(name) === file) {
        await unload(name);
        worker.removeTask(name);
        owned.delete(name);
        log.info('task module removed', { name });
      }
      return;
    }
    try {
      if (owned.get(name) === file) await unload(name);
      const mod = await importFresh(path, ++version);
      const exp = defaultExport(mod);
      const fn = typeof exp === 'function' ? exp : (exp as Record<string, unknown> | undefined)?.[name];
      if (typeof fn !== 'function') throw new Error('it exports no function');
      worker.addTask(name, fn as TaskFunction);
      owned.set(name, file);
      const u = findUnload(mod, exp);
      if (u) unloads.set(name, u);
      log.info(version > 1 ? 'task module reloaded' : 'task module loaded', { name, file });
    } catch (err) {
      log.error('task module failed to load; skipped', { file, reason: (err as Error).message });
    }
  };
  for (const file of readdirSync(dir).sort()) if (EXTENSIONS.has(extname(file))) await loadFile(file);
  const timers = new Map<string, NodeJS.Timeout>();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, (_event, file) => {
      if (!file || !EXTENSIONS.has(extname(file))) return;
      // Editors write in bursts: load once the file has been quiet for a moment.
      clearTimeout(timers.get(file));
      timers.set(
        file,
        setTimeout(() => void loadFile(file), 150),
      );
    });
  } catch (err) {
    log.warn('cannot watch the tasks folder; changes need a restart', { reason: (err as Error).message });
  }
  return {
    names: worker.taskNames,
    close: () => {
      watcher?.close();
      for (const t of timers.values()) clearTimeout(t);
    },
  };
}
