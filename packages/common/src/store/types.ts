/**
 * The Store API (SPEC section 9, the fs-job-store seed): where jobs and their results live, with
 * exclusive leases for the work and a notification queue with at-least-once delivery.
 *
 * Three workflows, each recoverable on its own:
 *   - creation:      `create(request)` records a PENDING job;
 *   - fulfilment:    `claim()` leases one PENDING job exclusively, `fulfill(id, value, lease)`
 *                    records its value (FULFILLED is terminal: a value is recorded at most once),
 *                    `release(lease)` gives the lease back;
 *   - notification:  `queue(id, target)` asks for `target` to hear about job `id`'s value;
 *                    `pullNotification()` leases one FULFILLED job with waiting targets, and
 *                    `done(notification, delivered)` removes the delivered targets and frees it.
 *                    A target stays until someone reports it delivered, so a consumer that dies
 *                    before `done` gets it delivered again (at least once).
 *
 * Every implementation passes test/store-contract.test.ts. See docs/architecture.md,
 * "Store and Queue APIs".
 */
import { TaskmeshError } from '../errors';

/** What a job's request, value and notification targets may hold: anything JSON can carry. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type JobState = 'PENDING' | 'FULFILLED';

export interface Job {
  readonly id: string;
  readonly state: JobState;
  /** What `create` was given. */
  readonly request: JsonValue;
  /** The fulfilment value; `undefined` while PENDING. */
  readonly value?: JsonValue;
  /** ms since the epoch. */
  readonly createdAt: number;
  readonly fulfilledAt?: number;
  /** Targets queued for notification and not yet reported delivered, oldest first. */
  readonly waiting: readonly JsonValue[];
}

export interface LeaseOptions {
  /**
   * How long the lease lives without renewal (ms). While `renew` is on, the holder renews it
   * every `leaseMs / 3`; a holder that stalls (SIGSTOP, a blocked event loop) longer than this
   * loses it, and another claimer may take the job.
   * @default 30000
   */
  leaseMs?: number;
  /**
   * Keep the lease alive in the background until it is released.
   * @default true
   */
  renew?: boolean;
  /**
   * Called once if the lease is lost before it is released: it expired, or a renewal found
   * another holder. Stop the work: another claimer may be doing it now, and a fenced
   * `fulfill` with this lease may be refused. Setting `lease.oncompromised` later works too;
   * passing it here cannot miss a loss that happens before the assignment.
   */
  oncompromised?: (err: LeaseLostError) => void;
}

/** An exclusive, expiring hold on one job (for its work, or for its notification). */
export interface Lease {
  /** The job id. */
  readonly id: string;
  /** Opaque fencing token: unique to this hold, never reused for the same job. */
  readonly token: string;
  /** When the lease expires unless renewed (ms since the epoch, the holder's clock). */
  readonly expiresAt: number;
  /** Aborted (with a `LeaseLostError`) when the lease is lost; never aborted by `release`. */
  readonly signal: AbortSignal;
  /** True once the lease was lost. */
  readonly compromised: boolean;
  oncompromised: ((err: LeaseLostError) => void) | undefined;
  /** Gives the lease back (same as `store.release(lease)`). Idempotent. */
  release(): Promise<void>;
}

/** A leased PENDING job: do its work, `fulfill`, then `release` (also after an error). */
export interface Claim extends Lease {
  readonly job: Job;
}

/** A leased notification: deliver to `waiting`, then `done(delivered)`. */
export interface Notification extends Lease {
  /** The fulfilment value of job `id`. */
  readonly value: JsonValue;
  /** Targets waiting for this job's value when it was pulled, oldest first. */
  readonly waiting: readonly JsonValue[];
  /** Same as `store.done(this, delivered)`. */
  done(delivered: readonly JsonValue[]): Promise<void>;
}

export interface CreateOptions {
  /** The job id; a random UUID when absent. An id already in the store is refused (`JOB_EXISTS`). */
  id?: string;
}

/**
 * What `fulfill` did. FULFILLED: this call recorded the value. ALREADY_FULFILLED: a value was
 * recorded before (the first one stays). LEASE_LOST: the lease passed in is no longer the job's
 * current lease (it expired and another claimer took the job), so nothing was written.
 */
export type FulfillResult = 'FULFILLED' | 'ALREADY_FULFILLED' | 'LEASE_LOST';

export interface Store {
  /** Records a new PENDING job. Resolves once the job is durable in this store. */
  create(request: JsonValue, opts?: CreateOptions): Promise<Job>;
  /** The job, or `undefined` if the store does not hold it. */
  get(id: string): Promise<Job | undefined>;
  /**
   * Leases one PENDING job nobody holds (or whose holder's lease expired), or resolves
   * `undefined` when there is none. Exclusive: while a lease is live, no other claim (in this
   * process or any other sharing the store) gets the same job. Which job comes first is not
   * specified; ordering is the Queue API's business.
   */
  claim(opts?: LeaseOptions): Promise<Claim | undefined>;
  /**
   * Records the job's value (PENDING → FULFILLED). With a lease it is fenced: refused
   * (`LEASE_LOST`) when another claim has taken the job since. Without one, anyone may
   * fulfil (as in the seed). Throws `StoreError` `JOB_NOT_FOUND` for an unknown id.
   */
  fulfill(id: string, value: JsonValue, lease?: Lease): Promise<FulfillResult>;
  /** Gives a work lease or a notification lease back. Idempotent; does not touch the job. */
  release(lease: Lease): Promise<void>;
  /**
   * Asks for `target` to be notified of job `id`'s value. Idempotent: a target equal (as JSON)
   * to one already waiting is not added twice. The job may still be PENDING; its notification
   * becomes pullable once it is FULFILLED. Throws `JOB_NOT_FOUND` for an unknown id.
   */
  queue(id: string, target: JsonValue): Promise<void>;
  /** Removes a waiting target (no error if it is not waiting). */
  unqueue(id: string, target: JsonValue): Promise<void>;
  unqueueAll(id: string, targets: readonly JsonValue[]): Promise<void>;
  /**
   * Leases one FULFILLED job that has waiting targets, or resolves `undefined`. Exclusive like
   * `claim`. The lease must end with `done` (or `release`, which delivers nothing).
   */
  pullNotification(opts?: LeaseOptions): Promise<Notification | undefined>;
  /**
   * Removes `delivered` from the job's waiting targets, then releases the notification lease.
   * Targets not listed stay and are pulled again. Removing is done even if the lease was lost
   * meanwhile: what was delivered was delivered.
   */
  done(notification: Notification, delivered: readonly JsonValue[]): Promise<void>;
  /** Stops renewals and timers of leases still held (they then expire on their own). Idempotent. */
  close(): Promise<void>;
}

export type StoreErrorCode = 'JOB_NOT_FOUND' | 'JOB_EXISTS' | 'LEASE_LOST';

export class StoreError extends TaskmeshError {
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}

/** The reason a lease's `signal` aborts and what `oncompromised` receives. */
export class LeaseLostError extends StoreError {
  constructor(
    readonly jobId: string,
    readonly reason: 'expired' | 'taken',
    message?: string,
  ) {
    super(
      'LEASE_LOST',
      message ?? (reason === 'expired' ? `lease on job ${jobId} expired before it was renewed` : `lease on job ${jobId} was taken by another holder`),
    );
    this.name = 'LeaseLostError';
  }
}
