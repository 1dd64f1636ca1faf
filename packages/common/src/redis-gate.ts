/**
 * Whether this process can reach Redis, and "write once Redis is back": a write that failed
 * because Redis was unreachable is tried again once it is up, until it lands or the process
 * closes. A refused write (a fenced script saying no) is an answer, not a failure: it is never
 * retried. Neither is an error Redis answered with (a script that failed): that is a bug to
 * report, not an outage to wait out, so it is thrown to the caller. One helper for the worker's
 * fenced writes and the distributor's owed writes.
 */
import { ReplyError } from 'ioredis';
export class RedisGate {
  private isUp = false;
  private closed = false;
  private waiters: Array<() => void> = [];

  /**
   * @param onChange called when reachability flips (not on repeats)
   */
  constructor(private readonly onChange: (up: boolean, reason: string) => void = () => undefined) {}

  get up(): boolean {
    return this.isUp;
  }

  set(up: boolean, reason = ''): void {
    if (up === this.isUp || this.closed) return;
    this.isUp = up;
    this.onChange(up, reason);
    if (up) this.release();
  }

  /** Resolves once Redis is up (at once if it is), or the gate is closed. */
  whenUp(): Promise<void> {
    if (this.isUp || this.closed) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /**
   * Runs `fn` until it resolves, waiting out outages in between (each failure marks Redis down).
   * Resolves undefined if the gate closes first. `retryMs` spaces attempts while the link flaps.
   */
  async write<T>(fn: () => Promise<T>, retryMs = 100): Promise<T | undefined> {
    for (;;) {
      await this.whenUp();
      if (this.closed) return undefined;
      try {
        return await fn();
      } catch (err) {
        if (err instanceof ReplyError) throw err;
        if (this.closed) return undefined;
        this.set(false, (err as Error).message);
        await new Promise((r) => setTimeout(r, retryMs));
      }
    }
  }

  /** Wakes every waiter; pending writes give up. */
  close(): void {
    this.closed = true;
    this.release();
  }

  private release(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }
}
