/** What a distributor knows about one connected worker: its task names and its free capacity. */
import type { Channel } from '@taskmesh/common/internal';
import type { MessageOf } from '@taskmesh/common';

let assignments = 0;

export class WorkerLink {
  tasks: string[] = [];
  concurrency = 0;
  registered = false;
  redisUp = true;
  draining = false;
  watchHost = '';
  watchPort = 0;
  /** Order of the last assignment to it, for spreading work evenly. */
  lastAssigned = 0;
  /** Running count the worker last reported (it includes attempts from other distributors). */
  private reportedRunning = 0;
  /** Attempts this distributor gave it (or is giving it) that the worker has not settled yet. */
  private readonly inflight = new Set<string>();

  constructor(readonly channel: Channel) {}

  get id(): string {
    return this.channel.peerId;
  }

  get free(): number {
    return Math.max(0, this.concurrency - Math.max(this.reportedRunning, this.inflight.size));
  }

  /** Share of its slots in use, 0..1. */
  get load(): number {
    return this.concurrency === 0 ? 1 : 1 - this.free / this.concurrency;
  }

  get canTakeWork(): boolean {
    return this.registered && this.redisUp && !this.draining && this.channel.open && this.free > 0;
  }

  register(msg: MessageOf<'register'>): void {
    this.tasks = msg.tasks;
    this.concurrency = msg.concurrency;
    this.reportedRunning = msg.running;
    this.watchHost = msg.watch_host;
    this.watchPort = msg.watch_port;
    this.registered = true;
  }

  reserve(id: string): void {
    this.inflight.add(id);
    this.lastAssigned = ++assignments;
  }

  /** Whether a slot is held here for this task. */
  holds(id: string): boolean {
    return this.inflight.has(id);
  }

  settled(id: string, running?: number): void {
    this.inflight.delete(id);
    if (running !== undefined) this.reportedRunning = running;
  }

  reported(running: number): void {
    this.reportedRunning = running;
  }

  /** Stops counting on this link (a newer connection of the same worker replaced it). */
  detach(): void {
    this.registered = false;
    this.inflight.clear();
  }
}
