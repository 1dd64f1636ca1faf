/** A distributor and workers running test/fixtures/watch-tasks.js, plus watcher configs, for the watch tests. */
import { join } from 'node:path';
import { TaskClient, loadConfig, type TaskEvent, type WatcherConfig } from '@taskmesh/common';
import { createWatcher, type Watcher } from '@taskmesh/watcher';
import {
  certFiles,
  cleanPrefix,
  clientConfig,
  distributorConfig,
  freePort,
  randomPrefix,
  ROOT,
  SHARE_KEY,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  REDIS_URL,
  type Proc,
} from './helpers';

export const WATCH_TASKS = join(ROOT, 'test', 'fixtures', 'watch-tasks.js');

export class WatchCluster {
  readonly prefix: string;
  readonly dir: string;
  distributor!: Proc;
  port = 0;
  readonly workers = new Map<string, Proc>();
  client!: TaskClient;
  private readonly watchers: Watcher[] = [];

  constructor(
    readonly label: string,
    readonly nWorkers = 1,
    readonly workerExtra: Record<string, unknown> = {},
  ) {
    this.prefix = randomPrefix(label);
    this.dir = tmpDir(label);
  }

  async start(): Promise<this> {
    this.port = await freePort();
    this.distributor = spawnBin('distributor', ['--config', writeConfig(this.dir, 'd', distributorConfig(this.prefix, this.port))], {}, 'distributor');
    await this.distributor.waitForLog('started');
    for (let i = 1; i <= this.nWorkers; i++) this.startWorker(`${this.label}-w${i}`);
    for (const id of this.workers.keys()) await this.distributor.waitForLog('worker connected', { worker: id });
    this.client = new TaskClient(loadConfig('cli', clientConfig(this.prefix)));
    return this;
  }

  startWorker(id: string): Proc {
    const cfg = workerConfig(this.prefix, [this.port], { id, concurrency: 8, ...this.workerExtra });
    const p = spawnBin('worker', ['--config', writeConfig(this.dir, id, cfg), '--tasks', WATCH_TASKS], {}, id);
    this.workers.set(id, p);
    return p;
  }

  worker(id: string): Proc {
    const p = this.workers.get(id);
    if (!p) throw new Error(`no worker ${id}`);
    return p;
  }

  /** A watcher config (role watcher) on this cluster's prefix. */
  watcherConfigObject(extra: Record<string, unknown> = {}, certs = certFiles('watcher')): Record<string, unknown> {
    return { share_key: SHARE_KEY, ...certs, ...extra, redis: { url: REDIS_URL, prefix: this.prefix } };
  }

  watcherConfigFile(name = 'watcher', extra: Record<string, unknown> = {}, certs = certFiles('watcher')): string {
    return writeConfig(this.dir, name, this.watcherConfigObject(extra, certs));
  }

  watcherConfig(extra: Record<string, unknown> = {}, certs = certFiles('watcher')): WatcherConfig {
    return loadConfig('watcher', this.watcherConfigObject(extra, certs));
  }

  /** A watcher library instance, closed with the cluster. */
  watcher(extra: Record<string, unknown> = {}, certs = certFiles('watcher')): Watcher {
    const w = createWatcher(this.watcherConfig(extra, certs));
    this.watchers.push(w);
    return w;
  }

  async functionStarted(taskId: string, attempt = 1): Promise<string> {
    return waitFor(`function start of ${taskId}`, () => {
      for (const [id, p] of this.workers) if (p.output.includes(`fixture start task=${taskId} attempt=${attempt}\n`)) return id;
      return null;
    });
  }

  logs(): string {
    return [this.distributor, ...this.workers.values()].map((p) => `----- ${p.name}\n${p.output}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.watchers.map((w) => w.close()));
    await Promise.all([...this.workers.values()].map((p) => p.stop()));
    await this.distributor?.stop();
    await this.client?.close();
    await cleanPrefix(this.prefix);
  }
}

/** Collects every event of one task from a watch iterator, with the time each arrived. */
export async function collect(it: AsyncIterable<TaskEvent>, onEvent?: (e: TaskEvent) => void): Promise<Array<TaskEvent & { at: number }>> {
  const out: Array<TaskEvent & { at: number }> = [];
  for await (const e of it) {
    out.push({ ...e, at: Date.now() });
    onEvent?.(e);
  }
  return out;
}

/** (attempt, seq) strictly rising, and within an attempt seq rising by exactly 1 (a gap covers `lost`). */
export function expectOrdered(events: TaskEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    const a = events[i - 1]!;
    const b = events[i]!;
    const next = a.type === 'gap' ? a.seq + Number(a.lost) : a.seq + 1;
    if (b.attempt === a.attempt) {
      if (b.seq !== next) throw new Error(`seq ${b.seq} after ${a.seq} (${a.type}) in attempt ${a.attempt}`);
    } else if (b.attempt < a.attempt) throw new Error(`attempt ${b.attempt} after ${a.attempt}`);
  }
}
