/**
 * The watch loops: this distributor's own tasks every watch.own_interval_ms, every task every
 * watch.all_interval_ms. They requeue STOPPED attempts and stale RUNNING ones (the requeue script
 * re-checks fence and staleness atomically, so two distributors never requeue one attempt twice),
 * delete END records that asked for clean_end, promote retries whose backoff ran out, and recover
 * what dead distributors left behind.
 */
import type { DistributorConfig } from '@taskmesh/common';
import type { Fence, Keys, Redis, RequeueMode, Scripts } from '@taskmesh/common/internal';
import type { Intake } from './intake';

const SCAN_BATCH = 500;

/** An attempt this distributor assigned. */
export interface OwnTask extends Fence {
  name: string;
  worker: string;
  cleanEnd: boolean;
}

export interface WatchHost {
  config: DistributorConfig;
  keys: Keys;
  scripts: Scripts;
  redis: Redis;
  intake: Intake;
  own: Map<string, OwnTask>;
  /** A worker this distributor hears is alive by definition, even if it lost its own Redis link. */
  hears(workerId: string): boolean;
  /** Stops tracking an own attempt (and frees its worker's slot in this distributor's count). */
  forget(id: string): void;
  requeue(id: string, workerId: string, fence: Fence, mode: RequeueMode, name?: string, staleBefore?: number): Promise<void>;
  stopping(): boolean;
}

export class TaskWatch {
  private ownBusy = false;
  private allBusy = false;

  constructor(private readonly h: WatchHost) {}

  async ownTasks(): Promise<void> {
    if (this.ownBusy) return;
    this.ownBusy = true;
    try {
      await this.check([...this.h.own.keys()], true);
      await this.promoteDue();
      await this.h.intake.recover();
    } finally {
      this.ownBusy = false;
    }
  }

  async allTasks(): Promise<void> {
    if (this.allBusy) return;
    this.allBusy = true;
    try {
      const { redis, keys } = this.h;
      let cursor = '0';
      do {
        const [next, ids] = await redis.sscan(keys.tasks, cursor, 'COUNT', SCAN_BATCH);
        cursor = next;
        await this.check(ids, false);
      } while (cursor !== '0' && !this.h.stopping());
      await this.recoverDeadPeers();
    } finally {
      this.allBusy = false;
    }
  }

  private async check(ids: string[], ownOnly: boolean): Promise<void> {
    if (ids.length === 0) return;
    const { redis, keys, scripts, own } = this.h;
    const pipe = redis.pipeline();
    for (const id of ids) pipe.hmget(keys.task(id), 'state', 'epoch', 'assignment', 'worker', 'updated_at', 'clean_end', 'name');
    const rows = (await pipe.exec()) ?? [];
    const staleBefore = Date.now() - this.h.config.watch.stale_ms;
    const heartbeats = new Map<string, number | null>();
    const workerBeat = async (w: string): Promise<number | null> => {
      if (!heartbeats.has(w)) {
        const v = await redis.hget(keys.worker(w), 'updated_at');
        heartbeats.set(w, v === null ? null : Number(v));
      }
      return heartbeats.get(w) ?? null;
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const [state, epoch, assignment, worker, updatedAt, cleanEnd, name] = (rows[i]?.[1] ?? []) as (string | null)[];
      const fence = { epoch: Number(epoch), assignment: assignment ?? '' };
      const mine = own.get(id);
      const moved = mine && (mine.epoch !== fence.epoch || mine.assignment !== fence.assignment);
      if (!state || moved || state === 'END' || state === 'FAILED' || state === 'CANCELLED' || (state === 'QUEUED' && ownOnly)) {
        if (mine) this.h.forget(id);
      }
      if (state === 'END' && cleanEnd === '1') {
        await scripts.cleanEnd(id);
      } else if (state === 'STOPPED') {
        await this.h.requeue(id, worker ?? '', fence, 'stopped', name ?? undefined);
      } else if (state === 'RUNNING' && worker && !this.h.hears(worker)) {
        const beat = await workerBeat(worker);
        const stale = beat === null || (Number(updatedAt) < staleBefore && beat < staleBefore);
        if (stale) await this.h.requeue(id, worker, fence, 'stale', name ?? undefined, staleBefore);
      }
    }
  }

  private async promoteDue(): Promise<void> {
    const { redis, keys, scripts } = this.h;
    const due = await redis.zrangebyscore(keys.delayed, '-inf', Date.now(), 'LIMIT', 0, 200);
    if (due.length === 0) return;
    const pipe = redis.pipeline();
    for (const id of due) pipe.hget(keys.task(id), 'name');
    const rows = (await pipe.exec()) ?? [];
    for (let i = 0; i < due.length; i++) {
      const name = rows[i]?.[1] as string | null;
      if (name) await scripts.promote(due[i]!, name);
      else await redis.zrem(keys.delayed, due[i]!);
    }
  }

  /** Hands back the intake lists of distributors that are gone, and prunes dead registry entries. */
  private async recoverDeadPeers(): Promise<void> {
    const { redis, keys, config, intake } = this.h;
    for (const id of await redis.smembers(keys.intakes)) {
      if (id === config.id || (await redis.exists(keys.distributor(id))) === 1) continue;
      await intake.handBack(id);
      await redis.srem(keys.intakes, id);
    }
    for (const [set, key] of [
      [keys.workers, (w: string) => keys.worker(w)],
      [keys.distributors, (d: string) => keys.distributor(d)],
    ] as const) {
      for (const member of await redis.smembers(set)) {
        if ((await redis.exists(key(member))) === 0) await redis.srem(set, member);
      }
    }
  }
}
