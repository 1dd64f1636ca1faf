/**
 * Completion notifications (the forerunner seed's onComplete hooks, made durable): every terminal
 * transition of a task adds one entry (`id`, `name`, `state`) to the `<prefix>completed` stream,
 * in the script that made the change. A subscription is a Redis consumer group on that stream, so
 * it is delivered at least once: an entry is acknowledged only after the handler resolved, a
 * subscriber that restarts under the same group gets what ended while it was down, and what a
 * dead consumer held is claimed again after `claimMs`.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { RedisConfig } from './config';
import type { Keys } from './keys';
import { parseRecord, type TaskRecord, type TaskState } from './record';
import { closeRedis, createRedis } from './redis';

export interface OnCompleteOptions {
  /**
   * The subscription's durable name (a consumer group). The same group after a restart resumes
   * where the last one acknowledged. @default `oncomplete:<name>`
   */
  group?: string;
  /** This process's name within the group. @default `<hostname>-<pid>` */
  consumer?: string;
  /** An entry a consumer took but did not acknowledge for this long is delivered again. @default 30000 */
  claimMs?: number;
  /** Called when the handler throws (the entry is then delivered again) or Redis fails. */
  onError?: (err: Error) => void;
}

export interface Subscription {
  /** Stops taking new entries; an entry being handled finishes first. */
  close(): Promise<void>;
}

type Entry = [id: string, fields: string[]];
type StreamReply = Array<[stream: string, entries: Entry[]]> | null;

const BLOCK_MS = 1000;
const COUNT = 100;

export function subscribeCompletions(
  redisConfig: RedisConfig,
  keys: Keys,
  name: string,
  handler: (record: TaskRecord) => unknown,
  opts: OnCompleteOptions = {},
): Subscription {
  const group = opts.group ?? `oncomplete:${name}`;
  const consumer = opts.consumer ?? `${hostname()}-${process.pid}`;
  const claimMs = opts.claimMs ?? 30000;
  // XREADGROUP blocks: a connection of its own (no command timeout; ioredis bounds the block).
  const redis: Redis = createRedis(redisConfig, { name: 'taskmesh-oncomplete', blockMs: BLOCK_MS });
  let stopped = false;
  const report = (err: unknown) => opts.onError?.(err instanceof Error ? err : new Error(String(err)));

  const handle = async (entries: Entry[]): Promise<void> => {
    // Entries of other names are this group's to skip: acknowledged together, in one call.
    const others: string[] = [];
    for (const [entryId, fields] of entries) {
      if (stopped) break;
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      if (f.name !== name || !f.id) {
        others.push(entryId);
        continue;
      }
      const rec = parseRecord(await redis.hgetall(keys.task(f.id)));
      // A clean_end record is gone once it ended: what the entry says is all there is.
      const record = rec ?? minimalRecord(f.id, name, f.state as TaskState);
      try {
        await handler(record);
      } catch (err) {
        report(err);
        continue; // not acknowledged: delivered again after claimMs
      }
      await redis.xack(keys.completed, group, entryId);
    }
    if (others.length > 0) await redis.xack(keys.completed, group, ...others);
  };

  const loop = async (): Promise<void> => {
    try {
      await redis.xgroup('CREATE', keys.completed, group, '$', 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) report(err);
    }
    // What this consumer took before a restart and never acknowledged comes first.
    let cursor = '0';
    while (!stopped) {
      try {
        if (cursor === '0') {
          const own = (await redis.xreadgroup('GROUP', group, consumer, 'COUNT', COUNT, 'STREAMS', keys.completed, '0')) as StreamReply;
          const entries = own?.[0]?.[1] ?? [];
          if (entries.length === 0) cursor = '>';
          else await handle(entries);
          continue;
        }
        // Entries other consumers of the group took and left (they died) come back to us.
        const claimed = (await redis.xautoclaim(keys.completed, group, consumer, claimMs, '0-0', 'COUNT', COUNT)) as [string, Entry[]];
        if (claimed[1]?.length) await handle(claimed[1].filter((e): e is Entry => Array.isArray(e) && e[1] !== null));
        const fresh = (await redis.xreadgroup('GROUP', group, consumer, 'COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', keys.completed, '>')) as StreamReply;
        await handle(fresh?.[0]?.[1] ?? []);
      } catch (err) {
        if (stopped) return;
        report(err);
        await new Promise((r) => setTimeout(r, 200));
        cursor = '0';
      }
    }
  };
  const running = loop();

  return {
    close: async () => {
      stopped = true;
      redis.disconnect();
      await running.catch(() => undefined);
      await closeRedis(redis);
    },
  };
}

function minimalRecord(id: string, name: string, state: TaskState): TaskRecord {
  return {
    id,
    name,
    config: null,
    state,
    attempts: 0,
    max_attempts: 0,
    stalls: 0,
    max_stalls: 0,
    epoch: 0,
    worker: null,
    distributor: null,
    priority: 0,
    created_at: null,
    started_at: null,
    updated_at: null,
    ended_at: null,
    result: null,
    error: null,
    state_optional: false,
    clean_end: true,
    cancel_requested: false,
    completions: state === 'END' ? 1 : 0,
  };
}
