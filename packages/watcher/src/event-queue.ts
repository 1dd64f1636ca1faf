/** A small unbounded async queue: producers push, one consumer awaits `shift`. */
export class AsyncQueue<T> {
  private items: T[] = [];
  private head = 0;
  private waiter: ((v: T | undefined) => void) | undefined;
  private closed = false;

  get size(): number {
    return this.items.length - this.head;
  }

  push(v: T): void {
    if (this.closed) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(v);
      return;
    }
    this.items.push(v);
  }

  /** No more items: a pending and every later `shift` resolves undefined once drained. */
  close(): void {
    this.closed = true;
    if (this.waiter && this.size === 0) {
      const w = this.waiter;
      this.waiter = undefined;
      w(undefined);
    }
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
        if (this.waiter === finish) this.waiter = undefined;
        resolve(v);
      };
      this.waiter = finish;
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
