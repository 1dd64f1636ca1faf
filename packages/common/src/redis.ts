/**
 * ioredis connections with every option we rely on set explicitly (ioredis 6 changed defaults):
 * RESP2, a bounded wait for every reply, fast capped reconnects. A command whose wait timed out
 * may still run later (ioredis re-sends what was unanswered), which is safe only because every
 * script is an idempotent compare-and-set on the task's fence (assign on its assignment id).
 *
 * Three topologies, chosen by the config (SPEC section 7): one server (`redis.url`), a primary
 * found through Sentinel (`redis.sentinels`), or a Redis Cluster (`redis.cluster`). The rest of
 * the code is typed against `Redis`; a Cluster client offers every method it uses (commands,
 * defineCommand and its Buffer variants, pipeline, multi, subscribe, quit, disconnect) and the
 * same 'ready' / 'close' events, so it is handed out as one.
 */
import { Cluster, Redis } from 'ioredis';
import type { ChainableCommander, ClusterOptions, RedisOptions } from 'ioredis';
import { redisTarget, type RedisConfig } from './config';

export interface RedisConnectionOptions {
  /**
   * A connection for blocking reads (BLMOVE, XREADGROUP BLOCK) that block up to this long: no
   * command timeout, but a blocking timeout of this plus `command_timeout_ms`. That is also the
   * deadline of a read queued while the connection is down, so it must outlast the block itself:
   * a read abandoned early would still be held by Redis, delaying the next ones.
   */
  blockMs?: number;
  /** Connection name shown by CLIENT LIST. */
  name?: string;
}

/** Capped exponential backoff with jitter: a restarted (or newly promoted) Redis is found again within about a second. */
function backoff(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 5), 1000) + Math.floor(Math.random() * 100);
}

/** A replica refuses writes with READONLY: a primary that was demoted under us. */
function isReadOnlyError(err: Error): boolean {
  return err.message.startsWith('READONLY');
}

export function redisOptions(config: RedisConfig, opts: RedisConnectionOptions = {}): RedisOptions {
  const timeout = config.command_timeout_ms;
  const { tls, ...target } = redisTarget(config);
  const base: RedisOptions = {
    ...target,
    ...(tls ? { tls: {} } : {}),
    protocol: 2,
    connectionName: opts.name,
    connectTimeout: Math.max(timeout, 1000),
    ...(opts.blockMs !== undefined ? { blockingTimeout: opts.blockMs + timeout, blockingTimeoutGrace: timeout } : { commandTimeout: timeout }),
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    enableReadyCheck: true,
    autoResendUnfulfilledCommands: true,
    lazyConnect: false,
    retryStrategy: backoff,
  };
  if (!config.sentinels) return base;
  const { host: _host, port: _port, ...rest } = base;
  return {
    ...rest,
    sentinels: config.sentinels.map(([host, port]) => ({ host, port })),
    name: config.sentinel_name ?? 'mymaster',
    // Writes go to the primary only; the ready check (INFO role) refuses a server that is not one.
    role: 'master',
    // Every sentinel unreachable: keep asking, at the same pace as a reconnect.
    sentinelRetryStrategy: backoff,
    // A sentinel that does not answer must not hold up finding the primary.
    sentinelCommandTimeout: timeout,
    // Sentinel reports the other sentinels; a client keeps working when the listed ones change.
    updateSentinels: true,
    // Follow a failover as soon as a sentinel announces it (+switch-master), instead of writing
    // to a demoted primary until Sentinel kills our connection there: those writes would be lost.
    // One subscription per sentinel, up to three, per connection; re-subscribed within 5 s.
    failoverDetector: true,
    sentinelMaxConnections: 3,
    sentinelReconnectStrategy: () => 5000,
    // A write that reached a demoted primary: reconnect (through Sentinel) and re-send it there.
    reconnectOnError: (err: Error) => (isReadOnlyError(err) ? 2 : false),
    // rediss:// means TLS to the primary and to the sentinels alike.
    enableTLSForSentinelMode: tls,
    ...(tls ? { sentinelTLS: {} } : {}),
  };
}

/** Options of a Cluster client; each node connection gets the single-server options (minus what Cluster owns). */
export function clusterOptions(config: RedisConfig, opts: RedisConnectionOptions = {}): ClusterOptions {
  const timeout = config.command_timeout_ms;
  const {
    host: _host,
    port: _port,
    db: _db,
    retryStrategy: _retry,
    enableOfflineQueue: _offline,
    ...node
  } = redisOptions({ ...config, sentinels: null }, opts);
  return {
    redisOptions: {
      ...node,
      reconnectOnError: null,
      // A master whose host died without a reset (power, network) leaves the socket open and
      // silent for minutes of TCP retries; the client would keep sending that slot's commands
      // there after the cluster promoted a replica. A socket that answers nothing for this long
      // after a command is dropped, which refreshes the slot map. Above the connection's longest
      // blocking read (the intake's BLMOVE blocks 5 s) with its grace.
      socketTimeout: Math.max(3 * timeout, 3000, (opts.blockMs ?? 0) + 2 * timeout),
    },
    // Every node lost: reconnect through the seed nodes, at the same pace as a single server.
    clusterRetryStrategy: backoff,
    // A node connection that drops is not redialled by itself: the slot map (refreshed on the
    // next MOVED, error or interval) decides which nodes to dial.
    clusterNodeRetryStrategy: null,
    enableOfflineQueue: true,
    enableReadyCheck: true,
    scaleReads: 'master',
    maxRedirections: 16,
    retryDelayOnMoved: 0,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: Math.max(timeout, 1000),
    // No periodic slot-map refresh: each one dials a fresh connection (CLUSTER SLOTS), which for
    // 1,000 workers every few seconds is hundreds of connects per second for nothing. A moved slot
    // answers MOVED and a lost node fails its commands; both refresh the map at once.
    slotsRefreshInterval: 0,
    lazyConnect: false,
    enableAutoPipelining: false,
    shardedSubscribers: false,
    useSRVRecords: false,
  };
}

export function createRedis(config: RedisConfig, opts: RedisConnectionOptions = {}): Redis {
  const redis = config.cluster ? createCluster(config, opts) : new Redis(redisOptions(config, opts));
  // Errors surface through the commands that fail; without a listener ioredis would print each one.
  redis.on('error', () => undefined);
  return redis;
}

/**
 * A Cluster client typed as `Redis` (see the file comment). Cluster queues a command that arrives
 * while it reconnects with no deadline of its own (the node's commandTimeout starts only once it
 * is sent), so the command's timer is started here: the bound of SPEC section 4 holds on a
 * cluster too. Blocking reads keep their node-side blocking timeout instead.
 */
function createCluster(config: RedisConfig, opts: RedisConnectionOptions): Redis {
  const cluster = new Cluster(
    (config.cluster ?? []).map(([host, port]) => ({ host, port })),
    clusterOptions(config, opts),
  );
  if (opts.blockMs === undefined) {
    const timeout = config.command_timeout_ms;
    type Send = (command: { setTimeout(ms: number): void }, ...rest: unknown[]) => unknown;
    const target = cluster as unknown as { sendCommand: Send };
    const send = target.sendCommand.bind(cluster) as Send;
    target.sendCommand = (command, ...rest) => {
      command.setTimeout(timeout);
      return send(command, ...rest);
    };
  }
  return cluster as unknown as Redis;
}

/** Closes a connection without waiting on an unreachable server. */
export async function closeRedis(redis: Redis): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([redis.quit(), new Promise((r) => (timer = setTimeout(r, 500)))]);
  } catch {
    // already closed
  } finally {
    clearTimeout(timer);
  }
  redis.disconnect();
}

export type { Redis };

/** Replies of a pipeline or transaction, as ioredis gives them. */
export type PipelineReplies = [error: Error | null, result: unknown][];

/** Throws the first error among `replies` (a pipeline reports errors per command). */
export function throwFirstError(replies: PipelineReplies | null): PipelineReplies {
  if (!replies) throw new Error('Redis discarded the transaction');
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0]!;
  return replies;
}

/**
 * One part of a pipeline that several parts share, so that they cost Redis one round trip: `add`
 * queues the part's commands on `pipe`; the function returned takes the part's own results out
 * of the pipeline's replies, throwing the first error among them (another part's error is that
 * part's to handle). A plain pipeline only: a MULTI's `length` counts the MULTI itself.
 */
export function queuePart(pipe: ChainableCommander, add: (pipe: ChainableCommander) => void): (replies: PipelineReplies) => unknown[] {
  const at = pipe.length;
  add(pipe);
  const n = pipe.length - at;
  return (replies) => throwFirstError(replies.slice(at, at + n)).map(([, v]) => v);
}
