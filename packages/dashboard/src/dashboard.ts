/**
 * The dashboard process: an HTTP(S) server for the static page, a Server-Sent Events stream that
 * carries the Redis snapshot (about once a second) and live task rows (every FLUSH_MS, from the
 * watcher protocol), and two state-changing endpoints, cancel and retry, that need the token or a
 * client certificate (auth.ts).
 *
 *   GET  /                         the page (static/index.html, app.js, style.css)
 *   GET  /api/state                { snapshot, live } once, as JSON
 *   GET  /api/events               SSE: `snapshot` and `live` messages
 *   POST /api/tasks/:id/cancel     200 { state } | 401 | 403 | 404
 *   POST /api/tasks/:id/retry      200 { state: "QUEUED" } | 409 { state, error } | 401 | 403 | 404
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadConfig, TaskClient, UnknownTaskError, type DashboardConfig, type WatcherConfig } from '@taskmesh/common';
import { Keys, closeRedis, createLogger, createRedis, type Logger, type Redis } from '@taskmesh/common/internal';
import { Watcher, type WatcherOptions } from '@taskmesh/watcher';
import { authorize, hostAllowed, sameOrigin } from './auth';
import { LiveTasks, type LiveTask } from './live';
import { SnapshotReader, type Snapshot } from './snapshot';

export interface DashboardOptions {
  /** How often Redis is read for workers, queues, failures and the dead list. @default 1000 */
  pollMs?: number;
  /** How often changed live rows are pushed to browsers. @default 100 */
  flushMs?: number;
  /** Passed to the watcher that follows every task. */
  watcher?: WatcherOptions;
}

const STATIC_DIR = join(__dirname, '..', 'static');
const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
/** The page loads nothing from elsewhere and cannot be framed (clickjacking of the buttons). */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};
/** SSE comment lines keep idle proxies and browsers from timing the stream out. */
const KEEPALIVE_MS = 15_000;
const TASK_ACTION = /^\/api\/tasks\/([^/]+)\/(cancel|retry)$/;

export class Dashboard {
  readonly config: DashboardConfig;
  private readonly log: Logger;
  private readonly redis: Redis;
  private readonly client: TaskClient;
  private readonly watcher: Watcher;
  private readonly reader: SnapshotReader;
  private readonly live = new LiveTasks();
  private readonly streams = new Set<ServerResponse>();
  private readonly server: Server;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopWatching: (() => void) | undefined;
  private snapshot: Snapshot | null = null;
  private snapshotError: string | null = null;
  private polling = false;
  private closing: Promise<void> | undefined;

  constructor(
    config: DashboardConfig,
    private readonly opts: DashboardOptions = {},
  ) {
    this.config = config;
    this.log = createLogger('dashboard', { id: config.id });
    const keys = new Keys(config.redis.prefix);
    this.redis = createRedis(config.redis, { name: `taskmesh-dashboard-${config.id}` });
    // Cancel and retry share the snapshot's connection (the client leaves a passed-in one open).
    this.client = new TaskClient({ limits: config.limits, redis: { ...config.redis, client: this.redis } });
    this.reader = new SnapshotReader(this.redis, keys, !config.redis.cluster);
    // The dashboard watches with its own certificate, as any watcher does.
    const watcherConfig: WatcherConfig = {
      role: 'watcher',
      id: config.id,
      share_key: config.share_key,
      redis: config.redis,
      limits: config.limits,
      tls: config.tls,
    };
    this.watcher = new Watcher(watcherConfig, opts.watcher);
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.warn('request failed', { url: req.url, reason: (err as Error).message });
        if (!res.headersSent) this.json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    };
    this.server = config.dashboard.tls
      ? createHttpsServer(
          {
            key: config.tls.key,
            cert: config.tls.cert,
            ca: config.tls.ca,
            requestCert: true,
            rejectUnauthorized: false,
            minVersion: 'TLSv1.2',
            handshakeTimeout: 5000,
          },
          handler,
        )
      : createHttpServer(handler);
  }

  /** Listens, starts following every task and polling Redis. Resolves once the page can be loaded. */
  async start(): Promise<this> {
    const { host, port } = this.config.dashboard;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.stopWatching = this.watcher.subscribe({ all: true }, (e) => this.live.apply(e));
    await this.poll();
    this.timers.push(setInterval(() => void this.poll(), this.opts.pollMs ?? 1000));
    this.timers.push(setInterval(() => this.flush(), this.opts.flushMs ?? 100));
    this.timers.push(setInterval(() => this.broadcast(': keepalive\n\n'), KEEPALIVE_MS));
    this.log.info('started', { url: this.url, auth: this.config.dashboard.token ? 'token' : 'none', tls: this.config.dashboard.tls });
    return this;
  }

  /** The page's address, with the port actually bound. */
  get url(): string {
    const a = this.server.address() as AddressInfo | null;
    const host = this.config.dashboard.host.includes(':') ? `[${this.config.dashboard.host}]` : this.config.dashboard.host;
    return `${this.config.dashboard.tls ? 'https' : 'http'}://${host}:${a?.port ?? this.config.dashboard.port}/`;
  }

  /** Stops polling and watching, ends every event stream and closes the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.timers) clearInterval(t);
      this.stopWatching?.();
      for (const res of this.streams) res.end();
      this.streams.clear();
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeAllConnections();
      await Promise.allSettled([closed, this.watcher.close(), this.client.close(), closeRedis(this.redis)]);
    })();
    return this.closing;
  }

  private async poll(): Promise<void> {
    // A slow Redis (each command may take up to redis.command_timeout_ms) must not pile up polls.
    if (this.polling) return;
    this.polling = true;
    try {
      this.snapshot = await this.reader.read();
      // With a sample only, a task missing from it proves nothing.
      if (this.snapshot.assignedComplete) this.live.reconcile(new Set(this.snapshot.assigned.map((a) => a.id)));
      if (this.snapshotError) this.log.info('Redis readable again');
      this.snapshotError = null;
    } catch (err) {
      const reason = (err as Error).message;
      if (this.snapshotError !== reason) this.log.warn('cannot read Redis', { reason });
      this.snapshotError = reason;
    } finally {
      this.polling = false;
    }
    this.broadcast(this.sse('snapshot', this.snapshotPayload()));
  }

  private snapshotPayload(): { snapshot: Snapshot | null; error: string | null } {
    return { snapshot: this.snapshot, error: this.snapshotError };
  }

  private flush(): void {
    const { tasks, removed } = this.live.flush();
    if (tasks.length > 0 || removed.length > 0) this.broadcast(this.sse('live', { tasks, removed }));
  }

  private sse(event: string, data: unknown): string {
    return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  private broadcast(chunk: string): void {
    for (const res of this.streams) {
      // A browser that stopped reading (a hidden tab on a slow link) is dropped, not buffered for:
      // it reconnects by itself (EventSource) and gets a full picture then.
      if (res.writableLength > 1 << 20) res.destroy();
      else res.write(chunk);
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostAllowed(req, this.config.dashboard.host))
      return this.json(res, 421, { error: 'use a loopback address (localhost, 127.0.0.1) for this dashboard' });
    // Not `new URL(req.url, base)`: a path such as `//api` would be read as a host.
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const action = TASK_ACTION.exec(path);
    if (action) return this.taskAction(req, res, decodeURIComponent(action[1]!), action[2] as 'cancel' | 'retry');
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.json(res, 405, { error: `${req.method} not allowed here` });
    const file = STATIC_FILES[path];
    if (file) {
      const body = await readFile(join(STATIC_DIR, file.file));
      res.writeHead(200, { 'content-type': file.type, ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/api/state') return this.json(res, 200, { ...this.snapshotPayload(), live: this.live.all(), auth: this.authMode() });
    if (path === '/api/events') return this.openStream(req, res);
    this.json(res, 404, { error: 'not found' });
  }

  /** What the page may offer: the token field only when a token is configured. */
  private authMode(): { token: boolean; certificate: boolean } {
    return { token: this.config.dashboard.token !== null, certificate: this.config.dashboard.tls };
  }

  private openStream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', ...SECURITY_HEADERS });
    res.write('retry: 1000\n\n');
    res.write(this.sse('hello', { auth: this.authMode() }));
    res.write(this.sse('snapshot', this.snapshotPayload()));
    res.write(this.sse('live', { tasks: this.live.all(), removed: [] as string[] }));
    this.streams.add(res);
    const drop = (): void => {
      this.streams.delete(res);
    };
    req.on('close', drop);
    res.on('error', drop);
  }

  private async taskAction(req: IncomingMessage, res: ServerResponse, id: string, action: 'cancel' | 'retry'): Promise<void> {
    if (req.method !== 'POST') return this.json(res, 405, { error: `use POST to ${action}` });
    if (!sameOrigin(req)) return this.json(res, 403, { error: 'cross-origin request refused' });
    const auth = authorize(req, this.config.dashboard.token);
    if (!auth.ok) {
      const headers: Record<string, string> = auth.status === 401 ? { 'www-authenticate': 'Bearer realm="taskmesh dashboard"' } : {};
      this.log.warn(`${action} refused`, { task: id, status: auth.status, remote: req.socket.remoteAddress });
      return this.json(res, auth.status, { error: auth.reason }, headers);
    }
    // The body is not used; drain it so the connection can be reused.
    req.resume();
    try {
      if (action === 'cancel') {
        const state = await this.client.cancel(id);
        this.log.info('cancel requested', { task: id, state, by: auth.by });
        return this.json(res, 200, { id, state });
      }
      const state = await this.client.retry(id);
      this.log.info('retry requested', { task: id, state, by: auth.by });
      if (state !== 'QUEUED') return this.json(res, 409, { id, state, error: `task is ${state}: only a FAILED or CANCELLED task can be retried` });
      return this.json(res, 200, { id, state });
    } catch (err) {
      if (err instanceof UnknownTaskError) return this.json(res, 404, { error: `no task ${id}` });
      throw err;
    } finally {
      // The page shows the new state at once rather than up to a poll later.
      void this.poll();
    }
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...SECURITY_HEADERS, ...headers });
    res.end(JSON.stringify(body));
  }
}

/** A started dashboard, from a config object or a config file path (role `dashboard`). */
export async function createDashboard(config: DashboardConfig | string, opts: DashboardOptions = {}): Promise<Dashboard> {
  const d = new Dashboard(typeof config === 'string' ? loadConfig('dashboard', config) : config, opts);
  try {
    return await d.start();
  } catch (err) {
    await d.close();
    throw err;
  }
}

export type { LiveTask, Snapshot };
