/**
 * MemoryStore: the Store API in one process's memory, for tests and embedding. Same contract as
 * the others (leases expire, fencing, at-least-once notifications), nothing survives the process.
 */
import { randomUUID } from 'node:crypto';

import { ClaimHandle, NotificationHandle } from './handles';
import { LeaseHandle, canonicalJson, checkJobId, cloneJson, leaseMsOf, newToken, type LeaseBackend } from './lease';
import {
  StoreError,
  type Claim,
  type CreateOptions,
  type FulfillResult,
  type Job,
  type JsonValue,
  type Lease,
  type LeaseOptions,
  type Notification,
  type Store,
} from './types';

interface HeldLease {
  token: string;
  expiresAt: number;
  released: boolean;
}

interface Entry {
  id: string;
  request: JsonValue;
  createdAt: number;
  value?: JsonValue;
  fulfilledAt?: number;
  /** Canonical JSON → target, in queue order. */
  waiting: Map<string, JsonValue>;
  work?: HeldLease;
  note?: HeldLease;
}

function isLive(l: HeldLease | undefined, now: number): boolean {
  return l !== undefined && !l.released && l.expiresAt > now;
}

export class MemoryStore implements Store {
  private readonly jobs = new Map<string, Entry>();
  private readonly live = new Set<LeaseHandle>();
  private readonly workBackend: LeaseBackend = this.backend('work');
  private readonly noteBackend: LeaseBackend = this.backend('note');

  async create(request: JsonValue, opts: CreateOptions = {}): Promise<Job> {
    const id = opts.id ?? randomUUID();
    checkJobId(id);
    if (this.jobs.has(id)) throw new StoreError('JOB_EXISTS', `job ${id} already exists`);
    const e: Entry = { id, request: cloneJson(request), createdAt: Date.now(), waiting: new Map() };
    this.jobs.set(id, e);
    return this.view(e);
  }

  async get(id: string): Promise<Job | undefined> {
    const e = this.jobs.get(id);
    return e && this.view(e);
  }

  async claim(opts?: LeaseOptions): Promise<Claim | undefined> {
    const leaseMs = leaseMsOf(opts);
    const now = Date.now();
    // Map order is creation order, so claims come oldest first here (not promised by the API).
    for (const e of this.jobs.values()) {
      if (e.value !== undefined || isLive(e.work, now)) continue;
      e.work = { token: newToken(), expiresAt: now + leaseMs, released: false };
      return new ClaimHandle(this.view(e), e.work.token, e.work.expiresAt, opts, this.workBackend, this.live);
    }
    return undefined;
  }

  async fulfill(id: string, value: JsonValue, lease?: Lease): Promise<FulfillResult> {
    const e = this.mustGet(id);
    if (lease && e.work?.token !== lease.token) return 'LEASE_LOST';
    if (e.value !== undefined) return 'ALREADY_FULFILLED';
    e.value = cloneJson(value);
    e.fulfilledAt = Date.now();
    return 'FULFILLED';
  }

  async release(lease: Lease): Promise<void> {
    await lease.release();
  }

  async queue(id: string, target: JsonValue): Promise<void> {
    const e = this.mustGet(id);
    const key = canonicalJson(target);
    if (!e.waiting.has(key)) e.waiting.set(key, cloneJson(target));
  }

  async unqueue(id: string, target: JsonValue): Promise<void> {
    this.jobs.get(id)?.waiting.delete(canonicalJson(target));
  }

  async unqueueAll(id: string, targets: readonly JsonValue[]): Promise<void> {
    for (const t of targets) await this.unqueue(id, t);
  }

  async pullNotification(opts?: LeaseOptions): Promise<Notification | undefined> {
    const leaseMs = leaseMsOf(opts);
    const now = Date.now();
    for (const e of this.jobs.values()) {
      if (e.value === undefined || e.waiting.size === 0 || isLive(e.note, now)) continue;
      e.note = { token: newToken(), expiresAt: now + leaseMs, released: false };
      return new NotificationHandle(
        e.id,
        cloneJson(e.value),
        [...e.waiting.values()].map((t) => cloneJson(t)),
        e.note.token,
        e.note.expiresAt,
        opts,
        this.noteBackend,
        this.live,
        (n, d) => this.done(n, d),
      );
    }
    return undefined;
  }

  async done(notification: Notification, delivered: readonly JsonValue[]): Promise<void> {
    await this.unqueueAll(notification.id, delivered);
    await notification.release();
  }

  async close(): Promise<void> {
    for (const h of [...this.live]) h.stop();
  }

  private mustGet(id: string): Entry {
    const e = this.jobs.get(id);
    if (!e) throw new StoreError('JOB_NOT_FOUND', `unknown job id: ${id}`);
    return e;
  }

  private view(e: Entry): Job {
    return {
      id: e.id,
      state: e.value === undefined ? 'PENDING' : 'FULFILLED',
      request: cloneJson(e.request),
      ...(e.value !== undefined ? { value: cloneJson(e.value), fulfilledAt: e.fulfilledAt } : {}),
      createdAt: e.createdAt,
      waiting: [...e.waiting.values()].map((t) => cloneJson(t)),
    };
  }

  private backend(kind: 'work' | 'note'): LeaseBackend {
    return {
      renew: async (id, token, leaseMs) => {
        const l = this.jobs.get(id)?.[kind];
        if (!l || l.token !== token || l.released) return 'taken';
        l.expiresAt = Date.now() + leaseMs;
        return l.expiresAt;
      },
      release: async (id, token) => {
        const l = this.jobs.get(id)?.[kind];
        if (l && l.token === token) l.released = true;
      },
    };
  }
}
