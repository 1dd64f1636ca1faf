/**
 * The Queue API (SPEC section 9, the forerunner seed): the order in which waiting tasks go out.
 * One interface, four kinds, each on Redis and in memory:
 *
 *   fifo      first in, first out (on Redis: the `new-task` list itself, LPUSH in, RPOP out)
 *   priority  higher `priority` first (the envelope field, default 0), first in first out within one
 *   random    a uniformly random waiting item
 *   weighted  a random waiting item, each drawn with probability weight / (sum of the weights),
 *             the weight coming from a function of the item or a table per task name
 *
 * Every implementation passes test/queue-contract.test.ts. See docs/architecture.md,
 * "Store and Queue APIs".
 */
import { TaskmeshError } from '../errors';

export const QUEUE_KINDS = ['fifo', 'priority', 'random', 'weighted'] as const;
export type QueueKind = (typeof QUEUE_KINDS)[number];

/**
 * A queued item: an object that JSON can carry, normally a task envelope (`name`, `priority`, ...).
 * No index signature, so interfaces such as `EnvelopeInput` fit; RedisQueue stores the item as JSON.
 */
export interface QueueItem {
  readonly name?: string;
  /** Integer from -1000 to 1000; used by the priority kind. @default 0 */
  readonly priority?: number;
}

export interface QueueOptions<T extends QueueItem = QueueItem> {
  kind: QueueKind;
  /** weighted: the weight of an item (> 0). Takes precedence over `weights`. */
  weight?: (item: T) => number;
  /** weighted: weight per task name (`item.name`); names not listed get `defaultWeight`. */
  weights?: Readonly<Record<string, number>>;
  /** weighted: @default 1 */
  defaultWeight?: number;
  /** random, weighted: the source of randomness, uniform on [0, 1). @default Math.random */
  random?: () => number;
}

export interface Queue<T extends QueueItem = QueueItem> {
  readonly kind: QueueKind;
  /** Adds an item. Throws `QueueError` `BAD_ITEM` for a bad priority or weight. */
  push(item: T): Promise<void>;
  /** Removes and returns the next item by this queue's kind, or `undefined` when it is empty. */
  pop(): Promise<T | undefined>;
  /** How many items wait. */
  size(): Promise<number>;
  /** Removes every waiting item. */
  clear(): Promise<void>;
  /** Releases what the queue holds (never a Redis connection it was given). Idempotent. */
  close(): Promise<void>;
}

export class QueueError extends TaskmeshError {
  /** For an entry that could not be parsed: its text, so the caller can dead-letter it. */
  readonly raw: string | undefined;
  constructor(message: string, raw?: string) {
    super('BAD_ITEM', message);
    this.name = 'QueueError';
    this.raw = raw;
  }
}
