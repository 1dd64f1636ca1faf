/**
 * FsStore: the Store API in one directory, shared safely by any number of processes on one host
 * (the fs-job-store seed). Layout:
 *
 *   pending/<id>.json             a PENDING job {id, request, createdAt}
 *   fulfilled/<id>.json           a FULFILLED job, the same plus {value, fulfilledAt}
 *   waiting/<id>/<sha256>.json    one notification target {target, queuedAt}
 *   leases/{work,note}/<id>/<n>   leases (fs-lease.ts)
 *   tmp/                          files being written
 *
 * Every file appears whole (fs-io.ts). Fulfilling links fulfilled/<id>.json first and removes
 * pending/<id>.json second, so a crash in between leaves the job in both places, never in
 * neither; fulfilled wins and the stale pending entry is removed by the next claimer that sees it.
 * So a SIGKILL at any instant leaves no torn file and loses no acknowledged job.
 */
import { createHash, randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

import { FsLeases } from './fs-lease';
import { createExclusive, errCode, exists, fsyncDir, listDir, readJsonFile, shuffled, unlinkIfExists } from './fs-io';
import { ClaimHandle, NotificationHandle } from './handles';
import { LeaseHandle, canonicalJson, checkJobId, cloneJson, leaseMsOf } from './lease';
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

export interface FsStoreOptions {
  /** The store: created if missing. Every process that shares it passes the same directory. */
  dir: string;
  /**
   * Files under tmp/ older than this are leftovers of a writer that died mid-write; they are
   * removed when the store opens.
   * @default 3600000
   */
  tmpMaxAgeMs?: number;
}

interface JobFile {
  id: string;
  request: JsonValue;
  createdAt: number;
  value?: JsonValue;
  fulfilledAt?: number;
}

interface TargetFile {
  target: JsonValue;
  queuedAt: number;
}

export class FsStore implements Store {
  readonly dir: string;
  private readonly tmp: string;
  private readonly work: FsLeases;
  private readonly note: FsLeases;
  private readonly live = new Set<LeaseHandle>();
  private readonly ready: Promise<void>;

  constructor(opts: FsStoreOptions) {
    this.dir = opts.dir;
    this.tmp = join(this.dir, 'tmp');
    this.work = new FsLeases(join(this.dir, 'leases', 'work'), this.tmp);
    this.note = new FsLeases(join(this.dir, 'leases', 'note'), this.tmp);
    this.ready = this.init(opts.tmpMaxAgeMs ?? 3600000);
    // Surfaces through the first operation; no unhandled rejection if none comes.
    this.ready.catch(() => undefined);
  }

  async create(request: JsonValue, opts: CreateOptions = {}): Promise<Job> {
    await this.ready;
    const id = opts.id ?? randomUUID();
    checkJobId(id);
    if (await exists(this.fulfilledPath(id))) throw new StoreError('JOB_EXISTS', `job ${id} already exists`);
    const doc: JobFile = { id, request: cloneJson(request), createdAt: Date.now() };
    if (!(await createExclusive(this.tmp, this.pendingPath(id), JSON.stringify(doc)))) throw new StoreError('JOB_EXISTS', `job ${id} already exists`);
    // The same id fulfilled by someone else meanwhile: ours would be a second job under that id.
    if (await exists(this.fulfilledPath(id))) {
      await unlinkIfExists(this.pendingPath(id));
      throw new StoreError('JOB_EXISTS', `job ${id} already exists`);
    }
    return { id, state: 'PENDING', request: doc.request, createdAt: doc.createdAt, waiting: [] };
  }

  async get(id: string): Promise<Job | undefined> {
    await this.ready;
    checkJobId(id);
    const doc = await this.readJob(id);
    return doc && this.view(doc, await this.targets(id));
  }

  async claim(opts?: LeaseOptions): Promise<Claim | undefined> {
    await this.ready;
    const leaseMs = leaseMsOf(opts);
    const ids = shuffled((await listDir(join(this.dir, 'pending'))).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    for (const id of ids) {
      if (await this.fulfilledLeftover(id)) continue;
      const lease = await this.work.acquire(id, leaseMs);
      if (!lease) continue;
      const doc = await readJsonFile<JobFile>(this.pendingPath(id));
      // Fulfilled between the listing and the lease: nothing to do any more.
      if (!doc || (await this.fulfilledLeftover(id))) {
        await this.work.release(id, lease.token);
        continue;
      }
      return new ClaimHandle(this.view(doc, await this.targets(id)), lease.token, lease.expiresAt, opts, this.work, this.live);
    }
    return undefined;
  }

  async fulfill(id: string, value: JsonValue, lease?: Lease): Promise<FulfillResult> {
    await this.ready;
    checkJobId(id);
    if (lease && !(await this.work.isCurrent(id, lease.token))) return 'LEASE_LOST';
    if (await exists(this.fulfilledPath(id))) return 'ALREADY_FULFILLED';
    const doc = await readJsonFile<JobFile>(this.pendingPath(id));
    if (!doc) {
      if (await exists(this.fulfilledPath(id))) return 'ALREADY_FULFILLED';
      throw new StoreError('JOB_NOT_FOUND', `unknown job id: ${id}`);
    }
    const done: JobFile = { ...doc, value: cloneJson(value), fulfilledAt: Date.now() };
    if (!(await createExclusive(this.tmp, this.fulfilledPath(id), JSON.stringify(done)))) return 'ALREADY_FULFILLED';
    await unlinkIfExists(this.pendingPath(id));
    await fsyncDir(join(this.dir, 'pending'));
    return 'FULFILLED';
  }

  async release(lease: Lease): Promise<void> {
    await lease.release();
  }

  async queue(id: string, target: JsonValue): Promise<void> {
    await this.ready;
    checkJobId(id);
    if (!(await this.readJob(id))) throw new StoreError('JOB_NOT_FOUND', `unknown job id: ${id}`);
    const dir = join(this.dir, 'waiting', id);
    const path = join(dir, this.targetName(target));
    const doc: TargetFile = { target: cloneJson(target), queuedAt: Date.now() };
    for (let tries = 0; ; tries++) {
      try {
        await fsp.mkdir(dir, { recursive: true });
        // false: the same target is already waiting, which is what was asked.
        await createExclusive(this.tmp, path, JSON.stringify(doc));
        return;
      } catch (err) {
        // `done` removed the emptied directory between our mkdir and link.
        if (errCode(err) !== 'ENOENT' || tries >= 5) throw err;
      }
    }
  }

  async unqueue(id: string, target: JsonValue): Promise<void> {
    await this.unqueueAll(id, [target]);
  }

  async unqueueAll(id: string, targets: readonly JsonValue[]): Promise<void> {
    await this.ready;
    checkJobId(id);
    const dir = join(this.dir, 'waiting', id);
    let removed = false;
    for (const t of targets) removed = (await unlinkIfExists(join(dir, this.targetName(t)))) || removed;
    if (!removed) return;
    await fsyncDir(dir).catch(() => undefined);
    // Fails with ENOTEMPTY while targets remain, which is the point: only empty directories go.
    await fsp.rmdir(dir).catch(() => undefined);
  }

  async pullNotification(opts?: LeaseOptions): Promise<Notification | undefined> {
    await this.ready;
    const leaseMs = leaseMsOf(opts);
    for (const id of shuffled(await listDir(join(this.dir, 'waiting')))) {
      const doc = await readJsonFile<JobFile>(this.fulfilledPath(id));
      if (!doc) continue;
      if ((await listDir(join(this.dir, 'waiting', id))).length === 0) continue;
      const lease = await this.note.acquire(id, leaseMs);
      if (!lease) continue;
      // Read after taking the lease, so a `done` that finished just before is not repeated.
      const waiting = await this.targets(id);
      if (waiting.length === 0) {
        await this.note.release(id, lease.token);
        continue;
      }
      return new NotificationHandle(id, doc.value ?? null, waiting, lease.token, lease.expiresAt, opts, this.note, this.live, (n, d) => this.done(n, d));
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

  // ---- internals ---------------------------------------------------------------------------

  private async init(tmpMaxAgeMs: number): Promise<void> {
    for (const sub of ['tmp', 'pending', 'fulfilled', 'waiting', join('leases', 'work'), join('leases', 'note')]) {
      await fsp.mkdir(join(this.dir, sub), { recursive: true });
    }
    await this.sweepTmp(tmpMaxAgeMs);
  }

  /** Removes tmp files of writers that died mid-write (old enough that no live writer owns them). */
  private async sweepTmp(maxAgeMs: number): Promise<void> {
    const cutoff = Date.now() - maxAgeMs;
    for (const name of await listDir(this.tmp)) {
      const path = join(this.tmp, name);
      try {
        if ((await fsp.stat(path)).mtimeMs < cutoff) await fsp.unlink(path);
      } catch {
        // Another process swept it first.
      }
    }
  }

  private pendingPath(id: string): string {
    return join(this.dir, 'pending', `${id}.json`);
  }

  private fulfilledPath(id: string): string {
    return join(this.dir, 'fulfilled', `${id}.json`);
  }

  /** File names are hashes: targets are any JSON, and equal targets must share one file. */
  private targetName(target: JsonValue): string {
    return `${createHash('sha256').update(canonicalJson(target)).digest('hex')}.json`;
  }

  /** True (and the pending entry removed) if the job is already fulfilled: a crashed fulfill's leftover. */
  private async fulfilledLeftover(id: string): Promise<boolean> {
    if (!(await exists(this.fulfilledPath(id)))) return false;
    await unlinkIfExists(this.pendingPath(id));
    return true;
  }

  private async readJob(id: string): Promise<JobFile | undefined> {
    // Fulfilled first: between the two steps of fulfill a job is in both places.
    return (
      (await readJsonFile<JobFile>(this.fulfilledPath(id))) ??
      (await readJsonFile<JobFile>(this.pendingPath(id))) ??
      (await readJsonFile<JobFile>(this.fulfilledPath(id)))
    );
  }

  private async targets(id: string): Promise<JsonValue[]> {
    const dir = join(this.dir, 'waiting', id);
    const files: TargetFile[] = [];
    for (const name of await listDir(dir)) {
      const t = await readJsonFile<TargetFile>(join(dir, name));
      if (t) files.push(t);
    }
    return files.sort((a, b) => a.queuedAt - b.queuedAt).map((t) => t.target);
  }

  private view(doc: JobFile, waiting: JsonValue[]): Job {
    const fulfilled = doc.value !== undefined;
    return {
      id: doc.id,
      state: fulfilled ? 'FULFILLED' : 'PENDING',
      request: doc.request,
      ...(fulfilled ? { value: doc.value, fulfilledAt: doc.fulfilledAt } : {}),
      createdAt: doc.createdAt,
      waiting,
    };
  }
}
