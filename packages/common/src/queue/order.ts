/**
 * What every kind needs to know about an item, shared by the memory and Redis queues so both
 * order alike: its priority, its weight, and the random draw that places it.
 */
import { PRIORITY_LIMIT } from '../envelope';
import { QueueError, type QueueItem, type QueueKind, type QueueOptions } from './types';

export function priorityOf(item: QueueItem): number {
  const p = item.priority ?? 0;
  if (!Number.isInteger(p) || Math.abs(p) > PRIORITY_LIMIT)
    throw new QueueError(`priority: must be an integer from -${PRIORITY_LIMIT} to ${PRIORITY_LIMIT}, got ${String(p)}`);
  return p;
}

export function weightOf<T extends QueueItem>(item: T, opts: QueueOptions<T>): number {
  const w =
    opts.kind === 'random'
      ? 1
      : opts.weight
        ? opts.weight(item)
        : ((item.name !== undefined ? opts.weights?.[item.name] : undefined) ?? opts.defaultWeight ?? 1);
  if (typeof w !== 'number' || !Number.isFinite(w) || w <= 0)
    throw new QueueError(`weight: must be a finite number > 0, got ${String(w)}${item.name ? ` for ${item.name}` : ''}`);
  return w;
}

/**
 * The random and weighted kinds draw by exponential keys (Efraimidis and Spirakis): an item of
 * weight w is placed at clock + Exp(w), and the lowest key goes out next, the clock moving to it.
 * Exponentials forget the past, so at every pop the waiting items' distances from the clock are
 * fresh Exp(w_i) draws, and item i comes first with probability w_i / sum(w): a weighted draw,
 * whatever was pushed or popped before, at O(log n) per operation instead of a scan.
 */
export function expDraw(weight: number, random: () => number): number {
  // 1 - U is in (0, 1], so the log is finite.
  return -Math.log(1 - random()) / weight;
}

export function checkKind(kind: QueueKind): void {
  if (!['fifo', 'priority', 'random', 'weighted'].includes(kind)) throw new TypeError(`unknown queue kind: ${String(kind)}`);
}
