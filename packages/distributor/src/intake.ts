/**
 * Intake: the reliable move from `new-task` into this distributor's processing list, and from
 * there into a task record and a ready queue (one Lua script). An envelope is never lost between
 * the two steps: whatever is left in a processing list is re-read, or handed back to `new-task`
 * by any distributor once its owner is gone.
 */
import type { DistributorConfig } from '@taskmesh/common';
import { parseEnvelope, type Keys, type Logger, type ParsedEnvelope, type Redis, type Scripts } from '@taskmesh/common/internal';

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export interface IntakeDeps {
  config: DistributorConfig;
  keys: Keys;
  scripts: Scripts;
  redis: Redis;
  /** A connection of its own: BLMOVE blocks it. */
  blocking: Redis;
  log: Logger;
  redisUp(): boolean;
  /** A task became runnable. */
  onQueued(): void;
}

export class Intake {
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly d: IntakeDeps) {}

  private get processing(): string {
    return this.d.keys.intake(this.d.config.id);
  }

  start(): void {
    this.loop = this.pull();
  }

  /** Stops pulling at once (the blocking read is interrupted) and waits for the loop to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.d.blocking.disconnect();
    await this.loop?.catch(() => undefined);
  }

  private async pull(): Promise<void> {
    const { keys, log } = this.d;
    while (!this.stopped) {
      if (!this.d.redisUp()) {
        await sleep(100);
        continue;
      }
      let raw: Buffer | null;
      try {
        // Bytes, not text: an entry that is not valid UTF-8 must still be found again by LREM.
        raw = await this.d.blocking.blmoveBuffer(keys.newTask, this.processing, 'RIGHT', 'LEFT', 1);
      } catch (err) {
        if (!this.stopped) {
          log.debug('intake read failed', { reason: (err as Error).message });
          await sleep(200);
        }
        continue;
      }
      if (raw !== null) await this.ingest(raw).catch((err: Error) => log.warn('intake failed; the envelope stays in the processing list', { reason: err.message }));
    }
  }

  private async ingest(raw: Buffer): Promise<void> {
    const { config, scripts, log } = this.d;
    let text: string;
    let parsed: ParsedEnvelope;
    try {
      text = UTF8.decode(raw);
      // parseEnvelope never throws: a hostile envelope (deeply nested, huge) becomes a dead entry.
      parsed = parseEnvelope(text, config.limits.max_message_bytes);
    } catch {
      text = raw.toString('utf8');
      parsed = { ok: false, reason: 'not valid UTF-8' };
    }
    if (!parsed.ok) {
      log.warn('dead envelope', { reason: parsed.reason, task: parsed.id });
      const entry = JSON.stringify({ reason: parsed.reason, raw: text, at: Date.now(), distributor: config.id });
      await scripts.deadletter(this.processing, raw, entry, parsed.reason, parsed.id ?? null);
      return;
    }
    const r = await scripts.intake(this.processing, raw, parsed.fields, config.id);
    if (r.kind === 'dead') log.warn('dead envelope', { reason: r.reason });
    if (r.kind === 'queued') this.d.onQueued();
  }

  /** Re-reads what is left in this distributor's processing list (after a failed step). */
  async recover(): Promise<void> {
    if ((await this.d.redis.llen(this.processing)) === 0) return;
    const raws = await this.d.redis.lrangeBuffer(this.processing, 0, -1);
    for (const raw of raws.reverse()) await this.ingest(raw);
  }

  /** Pushes a distributor's processing list back onto new-task, in its original order. */
  async handBack(distributorId: string): Promise<number> {
    const { redis, keys, log } = this.d;
    let n = 0;
    while ((await redis.lmove(keys.intake(distributorId), keys.newTask, 'LEFT', 'RIGHT')) !== null) n++;
    if (n > 0) log.info('handed back envelopes', { from: distributorId, count: n });
    return n;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
