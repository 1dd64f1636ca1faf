/**
 * Redis topologies started by the tests themselves, on free loopback ports, in temp dirs: a Redis
 * Cluster of masters, and a primary with a replica watched by three sentinels. Plus a Mesh: real
 * distributor and worker bins (and a TaskClient) on one prefix over any `redis.*` settings.
 * Every process here is ours and is stopped by its own pid; nothing touches another Redis.
 */
import { spawn, type ChildProcess, execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { TaskClient, isTerminal, loadConfig, type TaskRecord } from '@taskmesh/common';
import { distributorConfig, FIXTURE_TASKS, freePort, spawnBin, tmpDir, waitFor, workerConfig, writeConfig, type Proc } from '../helpers';

export type HostPort = [string, number];

/** A short-lived client to one server, for set-up and inspection (never the code under test). */
export async function withRedis<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, commandTimeout: 2000 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** One redis-server (or sentinel) process of ours. */
export class ServerProc {
  proc!: ChildProcess;
  output = '';
  private exit!: Promise<void>;

  constructor(
    readonly port: number,
    private readonly args: string[],
  ) {
    this.spawn();
  }

  private spawn(): void {
    this.proc = spawn('redis-server', this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exit = new Promise((r) => this.proc.once('exit', () => r()));
  }

  /** Starts it again with the same arguments (a cluster node finds its nodes.conf again). */
  async restart(): Promise<void> {
    await this.kill();
    this.spawn();
    await this.ready();
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async ready(): Promise<void> {
    await waitFor(
      `redis-server on ${this.port}`,
      async () => {
        if (!this.running) throw new Error(`redis-server on ${this.port} exited:\n${this.output}`);
        return (await withRedis(this.port, (r) => r.ping())) === 'PONG';
      },
      10000,
    );
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.proc.kill(signal);
    await this.exit;
  }
}

const SERVER_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];

// ---- Redis Cluster --------------------------------------------------------------------------

export class RedisCluster {
  readonly nodes: ServerProc[] = [];
  readonly dir = tmpDir('rcluster');

  static async start(masters = 3): Promise<RedisCluster> {
    const c = new RedisCluster();
    try {
      for (let i = 0; i < masters; i++) {
        const port = await freePort();
        c.nodes.push(
          new ServerProc(port, [
            '--port',
            String(port),
            ...SERVER_ARGS,
            '--dir',
            c.dir,
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '2000',
          ]),
        );
      }
      await Promise.all(c.nodes.map((n) => n.ready()));
      await run('redis-cli', ['--cluster', 'create', ...c.nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
      for (const n of c.nodes) {
        await waitFor(`cluster_state:ok on ${n.port}`, () => withRedis(n.port, async (r) => /cluster_state:ok/.test(await r.cluster('INFO'))), 15000, 100);
      }
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  get seeds(): HostPort[] {
    return this.nodes.map((n) => ['127.0.0.1', n.port]);
  }

  /** The port of the master that serves a key's slot. */
  async masterOf(key: string): Promise<number> {
    return withRedis(this.nodes[0]!.port, async (r) => {
      const slot = Number(await r.cluster('KEYSLOT', key));
      const ranges = (await r.cluster('SLOTS')) as Array<[number, number, [string, number, ...unknown[]]]>;
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return Number(range[2][1]);
    });
  }

  /**
   * Prefixes with hash tags whose slots are served by distinct masters, one per master: several
   * meshes spread over the cluster.
   */
  async prefixesOnDistinctMasters(label: string, count = this.nodes.length): Promise<Array<{ prefix: string; master: number }>> {
    const out: Array<{ prefix: string; master: number }> = [];
    const used = new Set<number>();
    for (let i = 0; out.length < count && i < 1000; i++) {
      const prefix = `{${label}-${randomBytes(3).toString('hex')}}:`;
      const master = await this.masterOf(prefix);
      if (used.has(master)) continue;
      used.add(master);
      out.push({ prefix, master });
    }
    if (out.length < count) throw new Error(`found hash tags for only ${out.length} of ${count} masters`);
    return out;
  }

  /** total_commands_processed per master port. */
  async commandsProcessed(): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const n of this.nodes) {
      const info = await withRedis(n.port, (r) => r.info('stats'));
      out.set(n.port, Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0));
    }
    return out;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
  }
}

// ---- Sentinel -------------------------------------------------------------------------------

export const SENTINEL_NAME = 'tmtest-primary';

export class SentinelSet {
  primary!: ServerProc;
  replica!: ServerProc;
  readonly sentinels: ServerProc[] = [];
  readonly dir = tmpDir('rsentinel');

  /**
   * A primary, one replica in sync, and three sentinels (quorum 2) that know the replica and each
   * other, so a forced failover and a primary's death are both handled at once.
   */
  static async start(opts: { downAfterMs?: number } = {}): Promise<SentinelSet> {
    const s = new SentinelSet();
    try {
      const p = await freePort();
      const q = await freePort();
      // Diskless full sync with no delay: the replica is in sync within milliseconds, not 5 s.
      const repl = ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'];
      s.primary = new ServerProc(p, ['--port', String(p), ...SERVER_ARGS, ...repl, '--dir', s.dir]);
      await s.primary.ready();
      s.replica = new ServerProc(q, ['--port', String(q), ...SERVER_ARGS, ...repl, '--dir', s.dir, '--replicaof', '127.0.0.1', String(p)]);
      await s.replica.ready();
      await waitFor('replica in sync', () => withRedis(q, async (r) => /master_link_status:up/.test(await r.info('replication'))), 10000, 50);
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        const file = join(s.dir, `sentinel-${port}.conf`);
        // Sentinel rewrites its own file, so each one gets a writable copy.
        writeFileSync(
          file,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${s.dir}`,
            `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${p} 2`,
            `sentinel down-after-milliseconds ${SENTINEL_NAME} ${opts.downAfterMs ?? 1000}`,
            `sentinel failover-timeout ${SENTINEL_NAME} 10000`,
            `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
            '',
          ].join('\n'),
        );
        s.sentinels.push(new ServerProc(port, [file, '--sentinel']));
      }
      await Promise.all(s.sentinels.map((x) => x.ready()));
      for (const x of s.sentinels) {
        await waitFor(
          `sentinel ${x.port} to know the replica and the other sentinels`,
          () =>
            withRedis(x.port, async (r) => {
              const m = toMap((await r.call('SENTINEL', 'MASTER', SENTINEL_NAME)) as string[]);
              return m.get('num-slaves') === '1' && m.get('num-other-sentinels') === '2';
            }),
          20000,
          100,
        );
      }
    } catch (err) {
      await s.stop();
      throw err;
    }
    return s;
  }

  get sentinelAddrs(): HostPort[] {
    return this.sentinels.map((x) => ['127.0.0.1', x.port]);
  }

  /** The primary's port as the sentinels report it (all must agree). */
  async primaryPort(): Promise<number | null> {
    const ports = await Promise.all(
      this.sentinels
        .filter((x) => x.running)
        .map((x) =>
          withRedis(x.port, async (r) => {
            const a = (await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_NAME)) as [string, string] | null;
            return a ? Number(a[1]) : null;
          }),
        ),
    );
    return ports.every((x) => x === ports[0]) ? (ports[0] ?? null) : null;
  }

  /** SENTINEL FAILOVER: the replica is promoted, the primary demoted (no agreement needed). */
  async forceFailover(): Promise<void> {
    const before = this.primary.port;
    await withRedis(this.sentinels[0]!.port, (r) => r.call('SENTINEL', 'FAILOVER', SENTINEL_NAME));
    await this.waitSwitch(before);
  }

  /** SIGKILL of the primary: the sentinels agree it is down and promote the replica. */
  async killPrimary(): Promise<void> {
    const before = this.primary.port;
    await this.primary.kill('SIGKILL');
    await this.waitSwitch(before);
  }

  private async waitSwitch(before: number): Promise<void> {
    await waitFor('the sentinels to name the new primary', async () => (await this.primaryPort()) === this.replica.port, 30000, 50);
    await waitFor(
      'the new primary to accept writes',
      () => withRedis(this.replica.port, async (r) => /role:master/.test(await r.info('replication'))),
      10000,
      50,
    );
    [this.primary, this.replica] = [this.replica, this.primary];
    void before;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels, this.primary, this.replica].filter(Boolean).map((x) => x.kill()));
  }
}

function toMap(flat: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i]!, flat[i + 1]!);
  return m;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 20000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`)) : resolve(stdout),
    );
  });
}

// ---- a mesh of real bins over any redis.* settings ------------------------------------------

export interface MeshOptions {
  label: string;
  prefix: string;
  /** redis.* settings shared by every process (sentinels, cluster, timeouts...). */
  redis: Record<string, unknown>;
  distributors?: number;
  workers?: number;
  worker?: Record<string, unknown>;
  distributor?: Record<string, unknown>;
}

export class Mesh {
  readonly dir: string;
  ports: number[] = [];
  distributors: Proc[] = [];
  workers = new Map<string, Proc>();
  client!: TaskClient;

  constructor(readonly opts: MeshOptions) {
    this.dir = tmpDir(opts.label);
  }

  get prefix(): string {
    return this.opts.prefix;
  }

  private redis(): Record<string, unknown> {
    return { prefix: this.prefix, ...this.opts.redis };
  }

  async start(): Promise<this> {
    for (let i = 0; i < (this.opts.distributors ?? 1); i++) this.ports.push(await freePort());
    for (const port of this.ports) this.distributors.push(this.startDistributor(port));
    for (const d of this.distributors) {
      await d.waitForLog('started', {}, 20000);
      if (!d.running) throw new Error(`${d.name} did not start:\n${d.output}`);
    }
    for (let i = 1; i <= (this.opts.workers ?? 2); i++) this.startWorker(`${this.opts.label}-w${i}`);
    this.client = new TaskClient(loadConfig('cli', { redis: this.redis() }));
    for (const id of this.workers.keys()) await this.connected(id);
    return this;
  }

  startDistributor(port: number): Proc {
    const cfg = distributorConfig(this.prefix, port, { id: `${this.opts.label}-d-${port}`, ...this.opts.distributor, redis: this.redis() });
    return spawnBin('distributor', ['--config', writeConfig(this.dir, `d-${port}`, cfg)], {}, `${this.opts.label}-d-${port}`);
  }

  startWorker(id: string): Proc {
    const cfg = workerConfig(this.prefix, this.ports, { id, concurrency: 8, ...this.opts.worker, redis: this.redis() });
    const p = spawnBin('worker', ['--config', writeConfig(this.dir, id, cfg), '--tasks', FIXTURE_TASKS], {}, id);
    this.workers.set(id, p);
    return p;
  }

  worker(id: string): Proc {
    const p = this.workers.get(id);
    if (!p) throw new Error(`no worker ${id}`);
    return p;
  }

  async connected(workerId: string, timeoutMs = 20000): Promise<void> {
    for (const d of this.distributors) {
      if (d.running) await d.waitForLog('worker connected', { worker: workerId }, timeoutMs);
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
      20,
    );
  }

  /** Records of many tasks, read in pages (one round trip per page). */
  async records(ids: readonly string[]): Promise<TaskRecord[]> {
    const out: TaskRecord[] = [];
    for (let i = 0; i < ids.length; i += 100) out.push(...(await Promise.all(ids.slice(i, i + 100).map((id) => this.record(id)))));
    return out;
  }

  /** For a failure report: each stuck task's record and the internal indexes that hold it. */
  private async whereAre(ids: string[]): Promise<string> {
    const r = this.client as unknown as { redis: import('ioredis').Redis };
    const k = this.client.keys;
    const out: string[] = [];
    for (const id of ids) {
      const h = await r.redis.hgetall(k.task(id));
      const [ready, delayed, stopped] = await Promise.all([
        r.redis.zscore(k.ready(h.name ?? ''), id),
        r.redis.zscore(k.delayed, id),
        r.redis.sismember(k.stopped, id),
      ]);
      const holders: string[] = [];
      for (const w of await r.redis.smembers(k.assigned)) if (await r.redis.sismember(k.workerTasks(w), id)) holders.push(w);
      const intakes: string[] = [];
      for (const d of await r.redis.smembers(k.intakes)) if ((await r.redis.lrange(k.intake(d), 0, -1)).some((e) => e.includes(id))) intakes.push(d);
      const inNew = (await r.redis.lrange(k.newTask, 0, -1)).some((e) => e.includes(id));
      const { config: _c, result: _r, ...brief } = h;
      out.push(
        `${id} ${JSON.stringify(brief)} ready=${ready} delayed=${delayed} stopped=${stopped} worker-tasks=${holders.join(',')} intake=${intakes.join(',')} new-task=${inNew}`,
      );
    }
    return out.join(' | ');
  }

  /** Waits until every task is terminal (polling), then returns the records. */
  async allTerminal(ids: readonly string[], timeoutMs: number): Promise<TaskRecord[]> {
    let last: TaskRecord[] = [];
    await waitFor(
      `${ids.length} tasks terminal`,
      async () => {
        last = await this.records(ids);
        return last.every((r) => r.state === 'END' || r.state === 'FAILED' || r.state === 'CANCELLED');
      },
      timeoutMs,
      250,
    ).catch(async (err: Error) => {
      const counts = new Map<string, number>();
      for (const r of last) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
      throw new Error(
        `${err.message}; states now ${JSON.stringify(Object.fromEntries(counts))}; stuck: ${await this.whereAre(
          last
            .filter((r) => !isTerminal(r.state))
            .slice(0, 5)
            .map((r) => r.id),
        )}`,
      );
    });
    return last;
  }

  /** How many times the fixture function started, per task id (runs, not recorded completions). */
  runs(): Map<string, number> {
    const out = new Map<string, number>();
    for (const w of this.workers.values()) {
      for (const m of w.output.matchAll(/fixture start task=(\S+) attempt=\d+/g)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + 1);
    }
    return out;
  }

  logs(): string {
    return [...this.distributors, ...this.workers.values()].map((p) => `----- ${p.name}\n${p.output}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.workers.values()].map((p) => p.stop()));
    await Promise.all(this.distributors.map((p) => p.stop()));
    await this.client?.close();
  }
}
