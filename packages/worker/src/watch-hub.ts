/**
 * The worker's side of the watch protocol (docs/protocol.md, "watch"): authenticated watcher
 * connections subscribe to this worker's task events. The Worker calls `attach` for every watcher
 * channel and `publish` for every task event, in order.
 */
import type { TaskEvent } from '@taskmesh/common';
import type { Channel, Logger } from '@taskmesh/common/internal';

export interface WatchHubOptions {
  log: Logger;
  /** limits.max_message_bytes */
  maxMessageBytes: number;
}

export class WatchHub {
  constructor(private readonly opts: WatchHubOptions) {}

  /** A watcher connected and proved the share_key. */
  attach(ch: Channel): void {
    ch.send({ type: 'error', code: 'NOT_IMPLEMENTED', message: 'watch subscriptions are not available on this worker yet' });
    ch.close(1000, 'not implemented');
  }

  /** Every event of every run on this worker, in (attempt, seq) order per task. */
  publish(e: TaskEvent): void {
    void e;
  }

  /** The worker is closing: release every watcher. */
  close(): void {
    void this.opts;
  }
}
