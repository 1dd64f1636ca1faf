/** MemoryQueue: every kind in one process's memory, for tests and embedding. */
import { checkKind, expDraw, priorityOf, weightOf } from './order';
import type { Queue, QueueItem, QueueKind, QueueOptions } from './types';

interface Keyed<T> {
  /** Lower goes out first. */
  key: number;
  /** Breaks ties first come, first served. */
  seq: number;
  item: T;
}

/** A binary min-heap on (key, seq). */
class Heap<T> {
  private readonly a: Keyed<T>[] = [];

  get size(): number {
    return this.a.length;
  }

  push(e: Keyed<T>): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): Keyed<T> | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    a[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
      if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
      if (m === i) break;
      [a[i], a[m]] = [a[m]!, a[i]!];
      i = m;
    }
    return top;
  }

  clear(): void {
    this.a.length = 0;
  }

  private less(x: Keyed<T>, y: Keyed<T>): boolean {
    return x.key < y.key || (x.key === y.key && x.seq < y.seq);
  }
}

export class MemoryQueue<T extends QueueItem = QueueItem> implements Queue<T> {
  readonly kind: QueueKind;
  private readonly heap = new Heap<T>();
  private readonly fifo: T[] = [];
  private head = 0;
  private seq = 0;
  private clock = 0;
  private readonly random: () => number;

  constructor(private readonly opts: QueueOptions<T>) {
    checkKind(opts.kind);
    this.kind = opts.kind;
    this.random = opts.random ?? Math.random;
  }

  async push(item: T): Promise<void> {
    // Stored as a copy, as Redis would: a caller mutating its object later changes nothing here.
    const copy = JSON.parse(JSON.stringify(item)) as T;
    switch (this.kind) {
      case 'fifo':
        this.fifo.push(copy);
        return;
      case 'priority':
        this.heap.push({ key: -priorityOf(copy), seq: this.seq++, item: copy });
        return;
      case 'random':
      case 'weighted':
        this.heap.push({ key: this.clock + expDraw(weightOf(copy, this.opts), this.random), seq: this.seq++, item: copy });
        return;
    }
  }

  async pop(): Promise<T | undefined> {
    if (this.kind === 'fifo') {
      if (this.head >= this.fifo.length) return undefined;
      const item = this.fifo[this.head++];
      // Compact now and then, so a long-lived queue does not keep every item it ever held.
      if (this.head > 1024 && this.head * 2 > this.fifo.length) {
        this.fifo.splice(0, this.head);
        this.head = 0;
      }
      return item;
    }
    const e = this.heap.pop();
    if (!e) return undefined;
    if (this.kind !== 'priority') this.clock = e.key;
    return e.item;
  }

  async size(): Promise<number> {
    return this.kind === 'fifo' ? this.fifo.length - this.head : this.heap.size;
  }

  async clear(): Promise<void> {
    this.fifo.length = 0;
    this.head = 0;
    this.heap.clear();
  }

  async close(): Promise<void> {
    await this.clear();
  }
}
