/**
 * `--all` / `--name`: one `watch` with `all` or `name` on every live worker (`<prefix>workers`,
 * looked at again every `scanMs`, so workers that join later are picked up). Each worker sends the
 * tasks it runs now from their first buffered event, then every task it starts.
 */
import { isTerminal, type TaskEvent, type WatchSince } from '@taskmesh/common';
import { sleep } from './event-queue';
import { isFinal } from './follow';
import type { LinkPool, LinkSubscription, WatchSpec } from './worker-link';

export interface WildCore {
  pool: LinkPool;
  listWorkers(): Promise<string[]>;
  readWorker(id: string): Promise<{ host: string; port: number } | null>;
}

export class WildWatch {
  private readonly active = new Map<string, LinkSubscription>();
  /** Last (attempt, seq) per task, so an event that reaches us twice is yielded once. */
  private readonly last = new Map<string, WatchSince>();
  private readonly retryAt = new Map<string, number>();

  constructor(
    private readonly core: WildCore,
    private readonly spec: WatchSpec,
    private readonly emit: (e: TaskEvent) => void,
    private readonly opts: { scanMs: number; signal: AbortSignal; onWorker?: (id: string, up: boolean) => void },
  ) {}

  async run(): Promise<void> {
    const { signal } = this.opts;
    while (!signal.aborted) {
      let ids: string[] = [];
      try {
        ids = await this.core.listWorkers();
      } catch {
        // Redis unreachable: keep the links we have and look again later.
      }
      await Promise.all(ids.filter((id) => !this.active.has(id) && (this.retryAt.get(id) ?? 0) <= Date.now()).map((id) => this.join(id)));
      await sleep(this.opts.scanMs, signal);
    }
    for (const s of this.active.values()) s.close();
    this.active.clear();
  }

  private async join(id: string): Promise<void> {
    const addr = await this.core.readWorker(id).catch(() => null);
    if (!addr || this.opts.signal.aborted) return;
    const link = this.core.pool.get(id, addr.host, addr.port);
    try {
      await this.core.pool.connect(link);
    } catch {
      this.retryAt.set(id, Date.now() + this.core.pool.delay(id));
      return;
    }
    if (this.opts.signal.aborted || this.active.has(id)) return;
    const sub = link.watch(this.spec, (it) => {
      if (it.kind === 'events') for (const e of it.events) this.accept(e);
      else if (this.active.get(id) === sub) {
        this.active.delete(id);
        if (it.kind === 'drop') this.core.pool.noteDrop(id);
        this.retryAt.set(id, Date.now() + this.core.pool.delay(id));
        this.opts.onWorker?.(id, false);
      }
    });
    this.active.set(id, sub);
    this.opts.onWorker?.(id, true);
  }

  private accept(e: TaskEvent): void {
    const l = this.last.get(e.task);
    if (l && (e.attempt < l.attempt || (e.attempt === l.attempt && e.seq <= l.seq))) return;
    // A terminal task is forgotten, so a long --follow does not grow this map forever.
    if (isFinal(e) && isTerminal(String(e.state))) this.last.delete(e.task);
    else this.last.set(e.task, { attempt: e.attempt, seq: e.type === 'gap' ? e.seq + Number(e.lost) - 1 : e.seq });
    this.emit(e);
  }
}
