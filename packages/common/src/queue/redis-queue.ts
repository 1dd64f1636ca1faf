/**
 * RedisQueue: every kind on Redis. Keys, all under the prefix passed in (give it a hash tag such
 * as `{tm}:` on Redis Cluster, so one script's keys share a slot):
 *
 *   <prefix><name>          fifo: a list (LPUSH in, RPOP out; with name `new-task` it is the intake
 *                           list of SPEC section 2). Other kinds: a sorted set of "<id>\n<item>"
 *   <prefix><name>:seq      priority: arrival counter
 *   <prefix><name>:clock    random, weighted: the key of the last item popped (see order.ts)
 *   <prefix><name>:op:<id>  one per push or pop for `replayWindowMs`, so a re-sent command is
 *                           answered, not repeated
 *
 * Use a different name per kind: a list and a sorted set cannot share a key.
 */
import { createHash, randomBytes } from 'node:crypto';

import type { Cluster, Redis } from 'ioredis';

import { POP_LIST, POP_SCORED, PUSH_LIST, PUSH_SCORED, type QueueScript } from './lua';
import { checkKind, expDraw, priorityOf, weightOf } from './order';
import { QueueError, type Queue, type QueueItem, type QueueKind, type QueueOptions } from './types';

export interface RedisQueueOptions<T extends QueueItem = QueueItem> extends QueueOptions<T> {
  /** A connection the caller owns (not closed by `close`). Blocking commands are not used. */
  redis: Redis | Cluster;
  /** Key prefix, e.g. the mesh's `redis.prefix` (`taskmesh:`). */
  prefix: string;
  /** @default 'queue' */
  name?: string;
  /**
   * How long a push or pop is remembered so that ioredis re-sending it after a reconnect is
   * answered without a second push or pop. Longer than any outage ioredis re-sends across.
   * @default 120000
   */
  replayWindowMs?: number;
}

const ID_BYTES = 12;

export class RedisQueue<T extends QueueItem = QueueItem> implements Queue<T> {
  readonly kind: QueueKind;
  readonly key: string;
  private readonly redis: Redis | Cluster;
  private readonly replayMs: number;
  private readonly random: () => number;
  private readonly shas = new Map<QueueScript, string>();

  constructor(private readonly opts: RedisQueueOptions<T>) {
    checkKind(opts.kind);
    this.kind = opts.kind;
    this.redis = opts.redis;
    this.key = `${opts.prefix}${opts.name ?? 'queue'}`;
    this.replayMs = opts.replayWindowMs ?? 120000;
    this.random = opts.random ?? Math.random;
  }

  async push(item: T): Promise<void> {
    const text = JSON.stringify(item);
    const op = this.opKey();
    if (this.kind === 'fifo') {
      await this.run(PUSH_LIST, [this.key, op], [text, this.replayMs]);
      return;
    }
    const member = `${randomBytes(ID_BYTES).toString('hex')}\n${text}`;
    if (this.kind === 'priority') {
      await this.run(PUSH_SCORED, [this.key, `${this.key}:seq`, op], [member, 'priority', priorityOf(item), this.replayMs]);
    } else {
      // Computed here, not in Lua: the weight function is the caller's code.
      await this.run(PUSH_SCORED, [this.key, `${this.key}:clock`, op], [member, 'draw', expDraw(weightOf(item, this.opts), this.random), this.replayMs]);
    }
  }

  async pop(): Promise<T | undefined> {
    const op = this.opKey();
    const raw =
      this.kind === 'fifo'
        ? await this.run(POP_LIST, [this.key, op], [this.replayMs])
        : await this.run(POP_SCORED, [this.key, `${this.key}:clock`, op], [this.replayMs, this.kind === 'priority' ? 'priority' : 'draw']);
    if (raw === null || raw === undefined) return undefined;
    const text = String(raw);
    const body = this.kind === 'fifo' ? text : text.slice(ID_BYTES * 2 + 1);
    try {
      const v = JSON.parse(body) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
      return v as T;
    } catch (err) {
      // Producers LPUSH anything onto a list: the entry is gone from the queue, so hand it over.
      throw new QueueError(`queue ${this.key}: an entry is not a JSON object (${(err as Error).message})`, body);
    }
  }

  async size(): Promise<number> {
    return this.kind === 'fifo' ? this.redis.llen(this.key) : this.redis.zcard(this.key);
  }

  async clear(): Promise<void> {
    // One key per command: on Redis Cluster a multi-key DEL needs one slot, which a prefix without a hash tag does not give.
    for (const k of [this.key, `${this.key}:seq`, `${this.key}:clock`]) await this.redis.del(k);
  }

  async close(): Promise<void> {
    // The connection belongs to the caller.
  }

  private opKey(): string {
    return `${this.key}:op:${randomBytes(ID_BYTES).toString('hex')}`;
  }

  /** EVALSHA, loading the script on NOSCRIPT (a restarted or failed-over Redis). */
  private async run(script: QueueScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    const lua = script.lua;
    let sha = this.shas.get(script);
    if (!sha) {
      sha = createHash('sha1').update(lua).digest('hex');
      this.shas.set(script, sha);
    }
    try {
      return await this.redis.evalsha(sha, script.keys, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return this.redis.eval(lua, script.keys, ...keys, ...args);
    }
  }
}
