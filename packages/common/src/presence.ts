/**
 * Presence: a process's own hash (`worker:<id>` or `distributor:<id>`) and its membership in the
 * role's set, kept alive by a TTL that each heartbeat renews. One module for both roles, so the
 * hash lifetime and the registration writes cannot drift apart between them.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { throwFirstError } from './redis';
import type { Keys } from './keys';

/** A hash expires when nobody keeps it current for this many health intervals. */
export const HASH_TTL_INTERVALS = 30;

export type Role = 'worker' | 'distributor';

export class Presence {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    readonly role: Role,
    readonly id: string,
    private readonly intervalMs: number,
  ) {}

  get ttlMs(): number {
    return this.intervalMs * HASH_TTL_INTERVALS;
  }

  private get hash(): string {
    return this.role === 'worker' ? this.keys.worker(this.id) : this.keys.distributor(this.id);
  }

  private get set(): string {
    return this.role === 'worker' ? this.keys.workers : this.keys.distributors;
  }

  /** Writes (or refreshes) the hash with `fields` and `updated_at`, and joins the role's set. */
  async announce(fields: Record<string, string | number>, now = Date.now()): Promise<void> {
    const m = this.redis.multi();
    this.queueBeat(m, fields, now);
    throwFirstError(await m.exec());
  }

  /**
   * Queues the heartbeat's writes on `pipe`, which may carry other commands, so that a tick costs
   * Redis one round trip (`queuePart` reads them back). Each write is idempotent and the next beat
   * repeats them all, so they need no transaction of their own.
   */
  queueBeat(pipe: ChainableCommander, fields: Record<string, string | number>, now = Date.now()): void {
    pipe
      .hset(this.hash, { ...fields, id: this.id, updated_at: now })
      .pexpire(this.hash, this.ttlMs)
      .sadd(this.set, this.id);
    // A distributor owns a processing list, which another one recovers once this hash is gone.
    if (this.role === 'distributor') pipe.sadd(this.keys.intakes, this.id);
  }

  /** Leaves: the hash and the set membership go (a clean exit is not a death). */
  async leave(): Promise<void> {
    const m = this.redis.multi().srem(this.set, this.id).del(this.hash);
    if (this.role === 'distributor') m.srem(this.keys.intakes, this.id);
    await m.exec();
  }
}
