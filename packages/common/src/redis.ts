/**
 * ioredis connections with every option we rely on set explicitly (ioredis 6 changed defaults):
 * RESP2, a bounded wait for every reply, fast capped reconnects. A command whose wait timed out
 * may still run later (ioredis re-sends what was unanswered), which is safe only because every
 * script is an idempotent compare-and-set on the task's fence (assign on its assignment id).
 */
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { redisTarget, type RedisConfig } from './config';

export interface RedisConnectionOptions {
  /** A connection for blocking reads (BLMOVE): no command timeout, a blocking-timeout safety net instead. */
  blocking?: boolean;
  /** Connection name shown by CLIENT LIST. */
  name?: string;
}

export function redisOptions(config: RedisConfig, opts: RedisConnectionOptions = {}): RedisOptions {
  const timeout = config.command_timeout_ms;
  const { tls, ...target } = redisTarget(config);
  return {
    ...target,
    ...(tls ? { tls: {} } : {}),
    protocol: 2,
    connectionName: opts.name,
    connectTimeout: Math.max(timeout, 1000),
    ...(opts.blocking
      ? { blockingTimeout: timeout, blockingTimeoutGrace: timeout }
      : { commandTimeout: timeout }),
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    enableReadyCheck: true,
    autoResendUnfulfilledCommands: true,
    lazyConnect: false,
    // Capped exponential backoff with jitter: a restarted Redis is found again within about a second.
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000) + Math.floor(Math.random() * 100),
  };
}

export function createRedis(config: RedisConfig, opts: RedisConnectionOptions = {}): Redis {
  const redis = new Redis(redisOptions(config, opts));
  // Errors surface through the commands that fail; without a listener ioredis would print each one.
  redis.on('error', () => undefined);
  return redis;
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
