/**
 * The one consumer waiting on an empty queue, if any: a push hands its item over directly, and
 * closing an empty queue hands over `undefined`. Shared by the queues below and in watch-queue.ts.
 */
export class Handoff<T> {
  private waiter: ((v: T | undefined) => void) | undefined;

  /** Gives `v` to the waiting consumer; false when none waits. */
  give(v: T | undefined): boolean {
    const w = this.waiter;
    if (!w) return false;
    this.waiter = undefined;
    w(v);
    return true;
  }

  /** `fn` is the waiting consumer from now on. */
  park(fn: (v: T | undefined) => void): void {
    this.waiter = fn;
  }

  /** `fn` stops waiting (a timeout or an abort), unless another consumer took its place. */
  unpark(fn: (v: T | undefined) => void): void {
    if (this.waiter === fn) this.waiter = undefined;
  }
}

/** A small unbounded async queue: producers push, one consumer awaits `shift`. */
export class AsyncQueue<T> {
  private items: T[] = [];
  private head = 0;
  private readonly handoff = new Handoff<T>();
  private closed = false;

  get size(): number {
    return this.items.length - this.head;
  }

  push(v: T): void {
    if (this.closed || this.handoff.give(v)) return;
    this.items.push(v);
  }

  /** No more items: a pending and every later `shift` resolves undefined once drained. */
  close(): void {
    this.closed = true;
    if (this.size === 0) this.handoff.give(undefined);
  }

  /** The next item; undefined when closed and drained, after `timeoutMs`, or when `signal` aborts. */
  shift(timeoutMs?: number, signal?: AbortSignal): Promise<T | undefined> {
    if (this.size > 0) {
      const v = this.items[this.head]!;
      this.items[this.head++] = undefined as T;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve(v);
    }
    if (this.closed || signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => finish(undefined);
      const finish = (v: T | undefined): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.handoff.unpark(finish);
        resolve(v);
      };
      this.handoff.park(finish);
      if (timeoutMs !== undefined) timer = setTimeout(() => finish(undefined), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
