/**
 * Prometheus metrics of one distributor or worker: the one home of its registry, its metric
 * families and its `/metrics` HTTP endpoint (on `metrics.host`:`metrics.port`, off when no port is
 * configured).
 *
 * Cost rule: nothing here adds a Redis command per task. Events (ends, requeues, refusals) are
 * in-process counters bumped where they happen; what only Redis knows (queue depths) is read at
 * scrape time with one pipeline of O(task names) cheap commands (LLEN, ZCARD, SCARD), cached for
 * SAMPLE_CACHE_MS so several scrapers share one read, and never a scan over tasks.
 */
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricsConfig } from './config';
import type { Logger } from './log';

export type MetricsRole = 'distributor' | 'worker';

/**
 * Why an attempt went back to the queue: the requeue mode, with `down` named for what it is to an
 * operator (the attempts of a worker whose connection was lost are taken over).
 */
export type RequeueCause = 'stopped' | 'stale' | 'takeover' | 'rejected';
const REQUEUE_CAUSES: readonly RequeueCause[] = ['stopped', 'stale', 'takeover', 'rejected'];

/** Why a listener refused a connection; a closed set so the label's cardinality stays fixed. */
export type RefusalReason = 'tls_handshake' | 'certificate' | 'allow_list' | 'handshake' | 'role' | 'share_key';
const REFUSAL_REASONS: readonly RefusalReason[] = ['tls_handshake', 'certificate', 'allow_list', 'handshake', 'role', 'share_key'];

/** How long one Redis read of the queue depths serves scrapes. */
export const SAMPLE_CACHE_MS = 1000;

/**
 * Values only known at scrape time. Every field is optional: each role fills what it knows.
 * `tasks` counts attempts by state and task name; `name` is "*" where an index holds every name.
 */
export interface MetricsSample {
  tasks?: ReadonlyArray<{ state: string; name: string; count: number }>;
  intakeDepth?: number;
  readyDepth?: ReadonlyArray<{ name: string; count: number }>;
  deadListLength?: number;
  peers?: Readonly<Partial<Record<'worker' | 'distributor' | 'watcher', number>>>;
  /** Seconds since this process last wrote its heartbeat to Redis; null before the first one. */
  heartbeatAgeSeconds?: number | null;
  concurrency?: number;
}

export type Sampler = () => Promise<MetricsSample> | MetricsSample;

/** Seconds. Tasks run from milliseconds to days. */
const RUN_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];
/** Seconds. A healthy queue hands work out in milliseconds; a backlog or a backoff waits minutes. */
const WAIT_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600];

export class Metrics {
  readonly registry = new Registry();
  /** Each attempt's end as the worker saw it recorded: END, FAILED, STOPPED, CANCELLED, TAKEN_OVER, UNRECORDED. */
  readonly attemptEnds: Counter<'name' | 'state'>;
  /** Worker: how long a task function ran, by how it ended (END, ERROR, CANCELLED, STOPPED). */
  readonly runSeconds: Histogram<'name' | 'outcome'>;
  /** Distributor: from the moment an attempt became QUEUED (created or requeued) to its start. */
  readonly queueWaitSeconds: Histogram<'name'>;
  readonly requeues: Counter<'cause' | 'result'>;
  /** A RUNNING attempt taken from a silent (stale) or lost (takeover) worker. */
  readonly stalls: Counter<'cause'>;
  /** Worker: an attempt that threw with attempts left; it is queued again after a backoff. */
  readonly retries: Counter<'name'>;
  readonly deadEnvelopes: Counter;
  /** A fenced end write that Redis refused: the attempt had been taken over meanwhile. */
  readonly fencedWritesRefused: Counter;
  readonly refusedConnections: Counter<'reason'>;
  private readonly sampleErrors: Counter;
  private samplers: Sampler[] = [];
  private cached: { at: number; value: Promise<MetricsSample> } | undefined;
  /** Each source's last good sample, by its position in `samplers`. */
  private lastParts: MetricsSample[] = [];
  private server: Server | undefined;
  private boundPort: number | null = null;

  constructor(
    readonly role: MetricsRole,
    private readonly config: MetricsConfig,
    private readonly log: Logger,
  ) {
    const registers = [this.registry];
    // A family only one role can fill is registered only there (an unregistered one still counts,
    // unread), so a scrape never shows a distributor's zero run time or a worker's zero intake.
    const only = (r: MetricsRole) => (r === role ? registers : []);
    const dist = only('distributor');
    const work = only('worker');
    // The role tells a distributor's view (whole queues) from a worker's (its own runs) when both
    // are scraped by one Prometheus job.
    this.registry.setDefaultLabels({ role });
    this.attemptEnds = new Counter({
      name: 'taskmesh_attempt_ends_total',
      help: 'Attempts ended on this worker, by task name and the state recorded',
      labelNames: ['name', 'state'],
      registers: work,
    });
    this.runSeconds = new Histogram({
      name: 'taskmesh_run_seconds',
      help: 'Run time of task functions on this worker, by task name and outcome',
      labelNames: ['name', 'outcome'],
      buckets: RUN_BUCKETS,
      registers: work,
    });
    this.queueWaitSeconds = new Histogram({
      name: 'taskmesh_queue_wait_seconds',
      help: 'Time from an attempt becoming QUEUED (created or requeued, backoff included) to its start',
      labelNames: ['name'],
      buckets: WAIT_BUCKETS,
      registers: dist,
    });
    this.requeues = new Counter({
      name: 'taskmesh_requeues_total',
      help: 'Attempts put back in the queue (or ended by it), by cause and result',
      labelNames: ['cause', 'result'],
      registers: dist,
    });
    this.stalls = new Counter({
      name: 'taskmesh_stalls_total',
      help: 'RUNNING attempts taken from a stale or lost worker',
      labelNames: ['cause'],
      registers: dist,
    });
    this.retries = new Counter({
      name: 'taskmesh_retries_total',
      help: 'Attempts that threw with attempts left (queued again after a backoff)',
      labelNames: ['name'],
      registers: work,
    });
    this.deadEnvelopes = new Counter({
      name: 'taskmesh_dead_envelopes_total',
      help: 'Envelopes this distributor refused and wrote to the dead list',
      registers: dist,
    });
    this.fencedWritesRefused = new Counter({
      name: 'taskmesh_fenced_writes_refused_total',
      help: 'End writes refused by the fence (the attempt had been taken over)',
      registers,
    });
    this.refusedConnections = new Counter({
      name: 'taskmesh_refused_connections_total',
      help: 'Connections this listener refused, by reason',
      labelNames: ['reason'],
      registers,
    });
    // Every series of a closed label set exists from the start at 0, so rate() and increase()
    // alerts see the first event instead of a series appearing out of nothing.
    for (const cause of REQUEUE_CAUSES) for (const result of ['requeued', 'cancelled', 'failed']) this.requeues.inc({ cause, result }, 0);
    for (const cause of ['stale', 'takeover'] as const) this.stalls.inc({ cause }, 0);
    for (const reason of REFUSAL_REASONS) this.refusedConnections.inc({ reason }, 0);
    this.sampleErrors = new Counter({
      name: 'taskmesh_metrics_sample_errors_total',
      help: 'Scrapes whose Redis read failed (the last values are served)',
      registers,
    });

    const sample = () => this.sample();
    const gauge = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (g: Gauge<L>, s: MetricsSample) => void,
      of: MetricsRole[] = ['distributor', 'worker'],
    ) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers: of.includes(role) ? registers : [],
        async collect() {
          const s = await sample();
          // Reset first: a name whose queue emptied or a peer that left must not linger.
          this.reset();
          fill(this, s);
        },
      });
    gauge(
      'taskmesh_tasks',
      'Tasks by state and task name ("*": an index over every name); RUNNING is this process\'s own attempts',
      ['state', 'name'],
      (g, s) => {
        for (const t of s.tasks ?? []) g.set({ state: t.state, name: t.name }, t.count);
      },
    );
    gauge(
      'taskmesh_intake_depth',
      'Envelopes waiting in new-task',
      [],
      (g, s) => {
        if (s.intakeDepth !== undefined) g.set(s.intakeDepth);
      },
      ['distributor'],
    );
    gauge(
      'taskmesh_ready_depth',
      'Runnable tasks in the ready queue of each task name',
      ['name'],
      (g, s) => {
        for (const r of s.readyDepth ?? []) g.set({ name: r.name }, r.count);
      },
      ['distributor'],
    );
    gauge(
      'taskmesh_dead_list_length',
      'Entries in the dead list',
      [],
      (g, s) => {
        if (s.deadListLength !== undefined) g.set(s.deadListLength);
      },
      ['distributor'],
    );
    gauge('taskmesh_connected_peers', "Authenticated connections open now, by the peer's role", ['peer_role'], (g, s) => {
      for (const [peerRole, n] of Object.entries(s.peers ?? {})) g.set({ peer_role: peerRole }, n ?? 0);
    });
    gauge('taskmesh_heartbeat_age_seconds', 'Seconds since this process last wrote its heartbeat to Redis', [], (g, s) => {
      if (s.heartbeatAgeSeconds !== undefined && s.heartbeatAgeSeconds !== null) g.set(s.heartbeatAgeSeconds);
    });
    gauge(
      'taskmesh_concurrency',
      'Most tasks this worker runs at once',
      [],
      (g, s) => {
        if (s.concurrency !== undefined) g.set(s.concurrency);
      },
      ['worker'],
    );
  }

  /** The port the endpoint listens on (the real one with port 0), or null when off. */
  get port(): number | null {
    return this.boundPort;
  }

  /** Adds a source of scrape-time values; the samples of all sources are merged (their `tasks` rows concatenated). */
  addSampler(fn: Sampler): void {
    this.samplers.push(fn);
  }

  /** Starts the endpoint if a port is configured; the default process metrics start with it. */
  async start(): Promise<void> {
    if (this.config.port === null || this.server) return;
    // Process metrics (CPU, memory, GC, event-loop lag) only when someone can read them: the
    // event-loop monitor is a timer of its own.
    collectDefaultMetrics({ register: this.registry });
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('taskmesh serves /metrics only\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port ?? 0, this.config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Keep-alive scrapes must not hold a closing process open.
    server.unref();
    this.server = server;
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : this.config.port;
    this.log.info('metrics endpoint listening', { host: this.config.host, port: this.boundPort, path: '/metrics' });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The merged sample of every source, read at most once per SAMPLE_CACHE_MS. */
  private sample(): Promise<MetricsSample> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < SAMPLE_CACHE_MS) return this.cached.value;
    const value = Promise.allSettled(this.samplers.map(async (fn) => fn())).then((results) => {
      // A source that failed (Redis down or slow) keeps its last values; the others are fresh.
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') this.lastParts[i] = r.value;
        else {
          this.sampleErrors.inc();
          this.log.debug('metrics sample failed', { reason: (r.reason as Error).message });
        }
      });
      const merged: MetricsSample = {};
      const tasks: Array<{ state: string; name: string; count: number }> = [];
      for (const part of this.lastParts) {
        if (!part) continue;
        Object.assign(merged, part);
        tasks.push(...(part.tasks ?? []));
      }
      merged.tasks = tasks;
      return merged;
    });
    this.cached = { at: now, value };
    return value;
  }
}
