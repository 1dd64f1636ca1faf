/**
 * The holder's side of a lease, shared by the Store implementations: renewal in the background,
 * the expiry timer, and the one-time "compromised" report. The backend says only whether a
 * renewal found the lease still ours.
 */
import { randomUUID } from 'node:crypto';

import { LeaseLostError, type JsonValue, type Lease, type LeaseOptions } from './types';

export const DEFAULT_LEASE_MS = 30000;

/** What a store does for one lease kind (work or notification) of one job. */
export interface LeaseBackend {
  /** Pushes the expiry to now + leaseMs if `token` still holds the lease; 'taken' otherwise. */
  renew(id: string, token: string, leaseMs: number): Promise<number | 'taken'>;
  /** Gives the lease up if `token` still holds it. */
  release(id: string, token: string): Promise<void>;
}

export function leaseMsOf(opts: LeaseOptions | undefined): number {
  const ms = opts?.leaseMs ?? DEFAULT_LEASE_MS;
  if (!Number.isFinite(ms) || ms < 30) throw new RangeError(`leaseMs must be a number >= 30, got ${String(opts?.leaseMs)}`);
  return ms;
}

/** Token layout is private to each store; the random part is what makes it never reused. */
export function newToken(prefix: string | number = ''): string {
  return `${prefix}${prefix === '' ? '' : '.'}${randomUUID()}`;
}

export class LeaseHandle implements Lease {
  readonly signal: AbortSignal;
  oncompromised: ((err: LeaseLostError) => void) | undefined;
  private readonly ctrl = new AbortController();
  private expiryTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private released: Promise<void> | undefined;
  private lost = false;
  private readonly leaseMs: number;

  constructor(
    readonly id: string,
    readonly token: string,
    private expiry: number,
    opts: LeaseOptions | undefined,
    private readonly backend: LeaseBackend,
    private readonly live: Set<LeaseHandle>,
  ) {
    this.signal = this.ctrl.signal;
    this.oncompromised = opts?.oncompromised;
    this.leaseMs = leaseMsOf(opts);
    live.add(this);
    this.armExpiry();
    if (opts?.renew ?? true) this.scheduleRenew();
  }

  get expiresAt(): number {
    return this.expiry;
  }

  get compromised(): boolean {
    return this.lost;
  }

  release(): Promise<void> {
    this.released ??= (async () => {
      this.stop();
      if (!this.lost) await this.backend.release(this.id, this.token);
    })();
    return this.released;
  }

  /** Stops the timers without releasing (store.close): the lease then expires on its own. */
  stop(): void {
    clearTimeout(this.expiryTimer);
    clearTimeout(this.renewTimer);
    this.live.delete(this);
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    // Timers are unref'd: a held lease must not keep a finished process alive; the work does that.
    this.expiryTimer = setTimeout(() => this.lose('expired'), Math.max(0, this.expiry - Date.now())).unref();
  }

  private scheduleRenew(): void {
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(10, Math.floor(this.leaseMs / 3))).unref();
  }

  private async renew(): Promise<void> {
    if (this.lost || this.released) return;
    const before = this.expiry;
    // Renewing a lease that already ran out would hide a window in which another claimer could
    // have taken the job: once expired, it stays lost.
    if (Date.now() >= before) return this.lose('expired');
    let next: number | 'taken';
    try {
      next = await this.backend.renew(this.id, this.token, this.leaseMs);
    } catch {
      // A failed renewal is retried; the expiry timer ends the lease if none succeeds in time.
      if (!this.lost && !this.released) this.scheduleRenew();
      return;
    }
    if (this.lost || this.released) return;
    if (next === 'taken') return this.lose('taken');
    // A renewal that landed after the old expiry may have raced a claimer that saw it expired.
    if (Date.now() >= before) return this.lose('expired');
    this.expiry = next;
    this.armExpiry();
    this.scheduleRenew();
  }

  private lose(reason: 'expired' | 'taken'): void {
    if (this.lost || this.released) return;
    this.lost = true;
    this.stop();
    const err = new LeaseLostError(this.id, reason);
    this.ctrl.abort(err);
    try {
      this.oncompromised?.(err);
    } catch {
      // A throwing callback must not become an unhandled rejection inside a timer.
    }
  }
}

/** JSON text with object keys sorted, so equal values (as JSON) give equal strings. */
export function canonicalJson(v: JsonValue): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k] as JsonValue)}`).join(',')}}`;
}

/** A deep copy that also proves the value is JSON (a function or a cycle throws here, not later). */
export function cloneJson<T extends JsonValue>(v: T): T {
  const text = JSON.stringify(v);
  if (text === undefined) throw new TypeError('value is not JSON-serializable');
  return JSON.parse(text) as T;
}

/** Ids are file names in FsStore and key suffixes in Redis: keep them to a safe alphabet. */
export const JOB_ID_RE = /^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,127}$/;

export function checkJobId(id: string): void {
  if (typeof id !== 'string' || !JOB_ID_RE.test(id)) throw new TypeError(`job id must match ${String(JOB_ID_RE)}, got ${JSON.stringify(id)}`);
}
