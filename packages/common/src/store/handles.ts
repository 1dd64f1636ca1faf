/** The Claim and Notification objects every store hands out: a lease plus the job's data. */
import { LeaseHandle, type LeaseBackend } from './lease';
import type { Claim, Job, JsonValue, LeaseOptions, Notification } from './types';

export class ClaimHandle extends LeaseHandle implements Claim {
  constructor(
    readonly job: Job,
    token: string,
    expiresAt: number,
    opts: LeaseOptions | undefined,
    backend: LeaseBackend,
    live: Set<LeaseHandle>,
  ) {
    super(job.id, token, expiresAt, opts, backend, live);
  }
}

export class NotificationHandle extends LeaseHandle implements Notification {
  constructor(
    id: string,
    readonly value: JsonValue,
    readonly waiting: readonly JsonValue[],
    token: string,
    expiresAt: number,
    opts: LeaseOptions | undefined,
    backend: LeaseBackend,
    live: Set<LeaseHandle>,
    private readonly onDone: (n: Notification, delivered: readonly JsonValue[]) => Promise<void>,
  ) {
    super(id, token, expiresAt, opts, backend, live);
  }

  done(delivered: readonly JsonValue[]): Promise<void> {
    return this.onDone(this, delivered);
  }
}
