/** A cluster of real bins (distributors and workers) on one key prefix, for fault tests. */
import { TaskClient, loadConfig, type TaskRecord } from '@taskmesh/common';
import {
  cleanPrefix,
  clientConfig,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  REDIS_URL,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type Proc,
  countLogs,
} from '../helpers';

export interface ClusterOptions {
  label: string;
  distributors?: number;
  workers?: number;
  redisUrl?: string;
  distributor?: Record<string, unknown>;
  worker?: Record<string, unknown>;
  /** Extra environment of every bin (e.g. TASKMESH_LOG_LEVEL, which the file's log.level does not beat). */
  env?: Record<string, string>;
}

export class Cluster {
  readonly prefix: string;
  readonly dir: string;
  readonly redisUrl: string;
  ports: number[] = [];
  distributors: Proc[] = [];
  workers = new Map<string, Proc>();
  /** Per worker: how many 'worker connected' lines each distributor had logged when it last started. */
  private readonly connBase = new Map<string, Map<Proc, number>>();
  client!: TaskClient;

  constructor(readonly opts: ClusterOptions) {
    this.prefix = randomPrefix(opts.label);
    this.dir = tmpDir(opts.label);
    this.redisUrl = opts.redisUrl ?? REDIS_URL;
  }

  async start(): Promise<this> {
    for (let i = 0; i < (this.opts.distributors ?? 1); i++) this.ports.push(await freePort());
    for (const port of this.ports) this.distributors.push(this.startDistributor(port));
    for (const d of this.distributors) {
      await d.waitForLog('started');
      if (!d.running) throw new Error(`${d.name} did not start:\n${d.output}`);
    }
    for (let i = 1; i <= (this.opts.workers ?? 2); i++) this.startWorker(`w${i}`);
    this.client = new TaskClient(loadConfig('cli', clientConfig(this.prefix, this.redisUrl)));
    for (const id of this.workers.keys()) await this.connected(id);
    return this;
  }

  startDistributor(port: number): Proc {
    const cfg = distributorConfig(this.prefix, port, this.opts.distributor ?? {}, this.redisUrl);
    return spawnBin('distributor', ['--config', writeConfig(this.dir, `d-${port}`, cfg)], this.opts.env, `d-${port}`);
  }

  /** Starts (or restarts) a worker bin with a fixed id. */
  startWorker(id: string, extra: Record<string, unknown> = {}): Proc {
    const cfg = workerConfig(this.prefix, this.ports, { id, concurrency: 4, ...this.opts.worker, ...extra }, this.redisUrl);
    this.connBase.set(id, new Map(this.distributors.map((d) => [d, this.connections(d, id)])));
    const p = spawnBin('worker', ['--config', writeConfig(this.dir, id, cfg), '--tasks', FIXTURE_TASKS], this.opts.env, id);
    this.workers.set(id, p);
    return p;
  }

  worker(id: string): Proc {
    const p = this.workers.get(id);
    if (!p) throw new Error(`no worker ${id}`);
    return p;
  }

  private connections(d: Proc, workerId: string): number {
    return countLogs(d.output, 'worker connected', { worker: workerId });
  }

  /** Waits until every running distributor has seen this worker connect since it last started. */
  async connected(workerId: string, timeoutMs = 15000): Promise<void> {
    const base = this.connBase.get(workerId) ?? new Map<Proc, number>();
    for (const d of this.distributors) {
      if (!d.running) continue;
      await waitFor(`${d.name} to see ${workerId}`, () => this.connections(d, workerId) > (base.get(d) ?? 0), timeoutMs);
    }
  }

  async record(id: string): Promise<TaskRecord> {
    const r = await this.client.status(id);
    if (!r) throw new Error(`task ${id} has no record`);
    return r;
  }

  async waitState(id: string, pred: (r: TaskRecord) => boolean, what: string, timeoutMs = 20000): Promise<TaskRecord> {
    return waitFor(
      what,
      async () => {
        const r = await this.client.status(id);
        return r && pred(r) ? r : null;
      },
      timeoutMs,
      10,
    );
  }

  /** Waits until a worker's function for this task (and attempt) has really started. */
  async functionStarted(workerId: string, taskId: string, attempt = 1, timeoutMs = 15000): Promise<void> {
    await this.worker(workerId).waitForOutput(new RegExp(`fixture start task=${taskId} attempt=${attempt}\\b`), timeoutMs);
  }

  logs(): string {
    return [...this.distributors, ...this.workers.values()].map((p) => `----- ${p.name}\n${p.output}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.workers.values()].map((p) => p.stop()));
    await Promise.all(this.distributors.map((p) => p.stop()));
    await this.client?.close();
    if (this.redisUrl === REDIS_URL) await cleanPrefix(this.prefix);
  }
}
