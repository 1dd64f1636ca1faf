/**
 * Intake: the reliable move from `new-task` into this distributor's processing list, and from
 * there into task records and ready queues, or straight onto a worker with a free slot. While
 * new-task holds envelopes they move and are recorded many at a time (one script call each way
 * per batch); only an empty list is waited on with a blocking read. An envelope is never lost
 * between the two steps: whatever is left in a processing list is re-read, or handed back to
 * `new-task` by any distributor once its owner is gone. One batch is in flight at a time, so
 * memory stays flat under any backlog.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseEnvelope, type IntakeItem, type Redis } from '@taskmesh/common/internal';
import type { Dispatcher } from './dispatch';
import type { DistributorState } from './state';

const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** Envelopes moved and recorded per script call. */
const INTAKE_BATCH = 256;
/**
 * How long one blocking read waits on an empty new-task before asking again. An envelope wakes it
 * at once whatever this is, and stop() disconnects it, so the length sets what an idle
 * distributor costs Redis (a round trip per read) and, with the connection's grace
 * (redis.command_timeout_ms), how long a read on a connection that went silent is waited for.
 */
export const INTAKE_BLOCK_MS = 5000;

export class Intake {
  private stopped = false;
  /**
   * Since when a batch is being recorded (0: none): what the processing list holds is in hand,
   * not left over. A batch in hand much longer than any command may take (a reply lost in a
   * failover) no longer counts, so recover() records what it left.
   */
  private ingestingSince = 0;
  private loop: Promise<void> | undefined;

  /**
   * @param blocking a connection of its own: BLMOVE blocks it
   * @param dispatcher holds worker slots for a batch it can hand over, and sends what started
   */
  constructor(
    private readonly s: DistributorState,
    private readonly blocking: Redis,
    private readonly dispatcher: Dispatcher,
  ) {}

  private get processing(): string {
    return this.s.keys.intake(this.s.id);
  }

  start(): void {
    this.loop = this.pull();
  }

  /** Stops pulling at once (the blocking read is interrupted) and waits for the loop to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.blocking.disconnect();
    await this.loop?.catch(() => undefined);
  }

  private async pull(): Promise<void> {
    const { keys, log, scripts } = this.s;
    // After a blocking read that timed out, new-task was empty a moment ago: block again at once
    // rather than spend a round trip (an idle Redis's main cost) on a batch read that finds nothing.
    let empty = false;
    while (!this.stopped) {
      if (!this.s.gate.up) {
        await sleep(100);
        continue;
      }
      let raws: Buffer[];
      try {
        raws = empty ? [] : await scripts.take(this.processing, INTAKE_BATCH);
        if (raws.length === 0) {
          // Bytes, not text: an entry that is not valid UTF-8 must still be found again by LREM.
          const one = await this.blocking.blmoveBuffer(keys.newTask, this.processing, 'RIGHT', 'LEFT', INTAKE_BLOCK_MS / 1000);
          raws = one === null ? [] : [one];
        }
        empty = raws.length === 0;
      } catch (err) {
        empty = false;
        if (!this.stopped) {
          log.debug('intake read failed', { reason: (err as Error).message });
          await sleep(200);
        }
        continue;
      }
      if (raws.length === 0) continue;
      this.ingestingSince = Date.now();
      await this.ingest(raws).catch((err: Error) => log.warn('intake failed; the envelopes stay in the processing list', { reason: err.message }));
      this.ingestingSince = 0;
    }
  }

  /** Records envelopes that are in this distributor's processing list; bad ones go to `dead`. */
  private async ingest(raws: readonly Buffer[]): Promise<void> {
    const { config, scripts, log } = this.s;
    const good: IntakeItem[] = [];
    for (const raw of raws) {
      let text: string;
      let parsed;
      try {
        text = UTF8.decode(raw);
        // parseEnvelope never throws: a hostile envelope (deeply nested, huge) becomes a dead entry.
        parsed = parseEnvelope(text, config.limits.max_message_bytes);
      } catch {
        text = raw.toString('utf8');
        parsed = { ok: false as const, reason: 'not valid UTF-8' };
      }
      if (parsed.ok) {
        good.push({ raw: text, fields: parsed.fields });
        continue;
      }
      log.warn('dead envelope', { reason: parsed.reason, task: parsed.id });
      this.s.metrics.deadEnvelopes.inc();
      const entry = JSON.stringify({ reason: parsed.reason, raw: text, at: Date.now(), distributor: config.id });
      // One dead letter that cannot be written now must not hold up the good envelopes beside it:
      // it stays in the processing list, and recover() tries it again.
      await scripts
        .deadletter(this.processing, raw, entry, parsed.reason, parsed.id ?? null)
        .catch((err: Error) => log.warn('could not dead-letter an envelope now; it stays in the processing list', { reason: err.message }));
    }
    // With a free worker slot for each task, tasks start in the intake script itself (hand-over).
    const slots = this.dispatcher.holdSlots(good.map((g) => g.fields));
    let results;
    try {
      results = await scripts.intake(this.processing, good, config.id, slots);
    } catch (err) {
      slots?.forEach((h, i) => this.dispatcher.release(h.worker, good[i]!.fields.id));
      if (slots) this.dispatcher.schedule();
      throw err;
    }
    let queued = false;
    let released = false;
    const sent: Promise<boolean>[] = [];
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      const { id, name } = good[i]!.fields;
      const slot = slots?.[i];
      if (r.kind === 'assigned' && slot) {
        sent.push(this.dispatcher.deliver(slot.worker, id, name, slot.assignment, r));
        continue;
      }
      if (slot) {
        this.dispatcher.release(slot.worker, id);
        released = true;
      }
      if (r.kind === 'dead') {
        log.warn('dead envelope', { reason: r.reason });
        this.s.metrics.deadEnvelopes.inc();
      }
      if (r.kind === 'queued') {
        queued = true;
        this.s.noteName(name);
      }
    }
    // Before the sends settle (one may fail): a run that found the held slots taken must look again.
    if (queued) this.dispatcher.queuedWork();
    else if (released) this.dispatcher.schedule();
    await Promise.all(sent);
  }

  /**
   * Re-reads what is left in this distributor's processing list (after a failed step).
   * @param held the list's length, as the own-tasks loop just read it
   */
  async recover(held: number): Promise<void> {
    const { redis } = this.s;
    const inHand = this.ingestingSince > 0 && Date.now() - this.ingestingSince < 10 * this.s.config.redis.command_timeout_ms;
    if (inHand || held === 0) return;
    const raws = (await redis.lrangeBuffer(this.processing, 0, -1)).reverse();
    for (let i = 0; i < raws.length; i += INTAKE_BATCH) await this.ingest(raws.slice(i, i + INTAKE_BATCH));
  }

  /** Pushes a distributor's processing list back onto new-task, in its original order. */
  async handBack(distributorId: string): Promise<number> {
    const { redis, keys, log } = this.s;
    let n = 0;
    while ((await redis.lmove(keys.intake(distributorId), keys.newTask, 'LEFT', 'RIGHT')) !== null) n++;
    if (n > 0) log.info('handed back envelopes', { distributor: distributorId, count: n });
    return n;
  }
}
