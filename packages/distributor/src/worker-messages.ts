/**
 * The handling of each connected worker: its frames (register, health, refusals, ends, releases)
 * and what its connection closing means (a goodbye, a protocol error, or a death).
 */
import { CloseCode, type Message } from '@taskmesh/common';
import type { Channel } from '@taskmesh/common/internal';
import type { Dispatcher } from './dispatch';
import type { Requeuer } from './requeue';
import type { DistributorState } from './state';
import { WorkerLink } from './worker-link';

export class WorkerMessages {
  constructor(
    private readonly s: DistributorState,
    private readonly dispatcher: Dispatcher,
    private readonly requeuer: Requeuer,
  ) {}

  /** A worker connected and proved the share_key. */
  attach(ch: Channel): void {
    const { s } = this;
    const existing = s.workers.get(ch.peerId);
    if (existing) {
      s.log.warn('worker connected twice; closing the older connection', { worker: ch.peerId });
      existing.detach();
      existing.channel.close(CloseCode.DUPLICATE_ID, 'replaced by a newer connection');
      s.workers.delete(ch.peerId);
    }
    const w = new WorkerLink(ch);
    s.workers.set(w.id, w);
    ch.on(
      'message',
      (msg) => void this.onMessage(w, msg).catch((err: Error) => s.log.warn('worker message failed', { worker: w.id, type: msg.type, reason: err.message })),
    );
    ch.on(
      'close',
      (code, reason) =>
        void this.onClosed(w, code, reason).catch((err: Error) =>
          s.log.warn("could not requeue a lost worker's tasks now; the watch loops will", { worker: w.id, reason: err.message }),
        ),
    );
    ch.startHealth(s.config.health.interval_ms, s.config.health.misses);
    s.log.info('worker connected', { worker: w.id });
  }

  private async onMessage(w: WorkerLink, msg: Message): Promise<void> {
    const { s } = this;
    if (s.workers.get(w.id) !== w) return;
    switch (msg.type) {
      case 'register': {
        if (msg.prefix !== s.config.redis.prefix) {
          // Another mesh's worker would be handed tasks whose records it cannot see.
          s.log.warn('refused worker: different redis.prefix', { worker: w.id, prefix: msg.prefix });
          w.channel.close(CloseCode.PREFIX_MISMATCH, `redis.prefix ${msg.prefix} differs from this distributor's`);
          return;
        }
        w.register(msg);
        const ttl = await s.redis.pttl(s.keys.workerDown(w.id)).catch(() => -2);
        if (ttl > 0) s.flag(w.id, Date.now() + ttl);
        this.dispatcher.queuedWork();
        return;
      }
      case 'ping':
        if (msg.running !== undefined) {
          const free = w.free;
          w.reported(msg.running);
          // Slots freed by another distributor's tasks: this one learns of them only here.
          if (w.free > free) this.dispatcher.freed();
        }
        return;
      case 'redis':
        w.redisUp = msg.up;
        s.log.info(msg.up ? 'worker Redis link back' : 'worker lost its Redis link', { worker: w.id });
        if (msg.up) this.dispatcher.queuedWork();
        return;
      case 'draining':
        w.draining = true;
        return;
      case 'reject':
        w.settled(msg.id, msg.running);
        await this.requeuer.requeue(msg.id, w.id, msg, 'rejected', s.own.get(msg.id)?.name);
        this.dispatcher.schedule();
        return;
      case 'done': {
        w.settled(msg.id, msg.running);
        const own = s.own.get(msg.id);
        if (own && own.epoch === msg.epoch) s.forget(msg.id);
        // TAKEN_OVER: the attempt lost its fence; nothing to record, only the capacity to free.
        if (msg.state === 'STOPPED') await this.requeuer.requeue(msg.id, w.id, msg, 'stopped', own?.name);
        // Only a task that asked for it costs a round trip here; the clean index catches the rest.
        if (msg.state === 'END' && own?.cleanEnd) await s.scripts.cleanEnd(msg.id).catch(() => undefined);
        this.dispatcher.freed();
        return;
      }
      case 'release': {
        // The worker lost Redis and stopped this attempt: record STOPPED for it, then requeue.
        w.settled(msg.id, msg.running);
        const name = s.own.get(msg.id)?.name;
        const fence = { epoch: msg.epoch, assignment: msg.assignment };
        s.gate
          .write(async () => {
            const r = await s.scripts.finish(msg.id, w.id, fence, 'STOPPED', '', msg.reason);
            // The requeue script acts only on a STOPPED record with this fence, whoever recorded it.
            if (r.result !== 'refused') await this.requeuer.requeue(msg.id, w.id, fence, 'stopped', name);
            else s.metrics.fencedWritesRefused.inc();
          })
          .catch((err: Error) => s.log.error('could not record a released task as STOPPED', { task: msg.id, reason: err.message }));
        return;
      }
      case 'error':
        s.log.warn('worker reported a protocol error', { worker: w.id, code: msg.code, reason: msg.message });
        return;
      case 'pong':
        return;
      default:
        w.channel.send({ type: 'error', code: 'UNEXPECTED_FRAME', message: `a distributor does not accept ${msg.type} frames` });
    }
  }

  private async onClosed(w: WorkerLink, code: number, reason: string): Promise<void> {
    const { s } = this;
    if (s.workers.get(w.id) !== w) return;
    s.workers.delete(w.id);
    // What this distributor gave it and heard no end of (requeueUnstarted).
    const given = [...s.own].filter(([, t]) => t.worker === w.id);
    s.forgetWorker(w.id);
    if (s.stopping) return;
    // 1000/1001: the worker said goodbye after stopping its tasks, which are requeued as STOPPED.
    // 1007/1009/4004: a frame it could not take; the process is alive and will reconnect.
    const goodbye = code === 1000 || code === 1001;
    if (goodbye) await this.requeuer.requeueUnstarted(w.id, given).catch(() => undefined);
    const alive = goodbye || code === CloseCode.INVALID_UTF8 || code === CloseCode.TOO_BIG || code === CloseCode.PROTOCOL_ERROR;
    s.log.info(goodbye ? 'worker disconnected' : alive ? 'worker connection closed on a protocol error' : 'worker down', { worker: w.id, code, reason });
    if (!alive) {
      const holdMs = s.config.watch.stale_ms;
      s.flag(w.id, Date.now() + holdMs);
      await s.redis.set(s.keys.workerDown(w.id), s.id, 'PX', holdMs).catch(() => undefined);
    }
    await this.requeuer.requeueWorkerTasks(w.id, alive ? 'stopped' : 'down');
    this.dispatcher.schedule();
  }
}
