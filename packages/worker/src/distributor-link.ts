/**
 * A worker's connection to one distributor, kept open: reconnects with capped exponential backoff
 * and jitter, re-registers after every connect.
 */
import { connect, type Channel, type Logger } from '@taskmesh/common/internal';
import type { WorkerConfig } from '@taskmesh/common';

const MIN_DELAY_MS = 100;
const MAX_DELAY_MS = 5000;
/** A connection that stayed open this long resets the backoff. */
const STABLE_MS = 5000;

export class DistributorLink {
  channel: Channel | undefined;
  private failures = 0;
  private openedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly config: WorkerConfig,
    private readonly log: Logger,
    private readonly onChannel: (link: DistributorLink, ch: Channel) => void,
  ) {}

  get label(): string {
    return `${this.host}:${this.port}`;
  }

  get open(): boolean {
    return this.channel?.open === true;
  }

  /** The distributor's config id once connected. */
  get distributorId(): string | undefined {
    return this.channel?.peerId;
  }

  start(): void {
    void this.attempt();
  }

  stop(code = 1001, reason = 'worker shutting down'): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.channel?.close(code, reason);
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    try {
      const c = this.config;
      const ch = await connect({
        id: c.id,
        role: 'worker',
        tls: c.tls,
        shareKey: c.share_key,
        host: this.host,
        port: this.port,
        maxPayload: c.limits.max_message_bytes,
        allow: c.allow.distributors,
        log: this.log,
      });
      if (this.stopped) {
        ch.close(1001, 'worker shutting down');
        return;
      }
      this.channel = ch;
      this.openedAt = Date.now();
      ch.on('close', (code, reason) => {
        if (this.channel === ch) this.channel = undefined;
        // A connection the distributor closes right away (wrong prefix, duplicate id...) counts as
        // a failed attempt, so the backoff grows instead of hammering it.
        this.failures = Date.now() - this.openedAt < STABLE_MS ? this.failures + 1 : 0;
        if (!this.stopped) {
          this.log.warn('distributor connection closed', { distributor: ch.peerId, address: this.label, code, reason });
          this.schedule();
        }
      });
      this.log.info('connected to distributor', { distributor: ch.peerId, address: this.label });
      this.onChannel(this, ch);
    } catch (err) {
      if (this.failures === 0 || this.failures % 20 === 0)
        this.log.warn('cannot connect to distributor', { address: this.label, reason: (err as Error).message });
      this.failures++;
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const base = Math.min(MIN_DELAY_MS * 2 ** Math.min(this.failures, 10), MAX_DELAY_MS);
    this.timer = setTimeout(() => void this.attempt(), base / 2 + Math.random() * (base / 2));
    this.timer.unref();
  }
}
