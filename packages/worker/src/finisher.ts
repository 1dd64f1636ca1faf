/**
 * The end writes of one worker's attempts, batched: every end recorded in one turn of the event
 * loop goes to Redis in one finish script call, each still fenced on its own (epoch, assignment).
 */
import { ReplyError } from 'ioredis';
import type { Finished, FinishItem, Scripts } from '@taskmesh/common/internal';

const MAX_BATCH = 500;

interface Pending {
  item: FinishItem;
  resolve: (f: Finished) => void;
  reject: (err: Error) => void;
}

export class Finisher {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly scripts: Scripts,
    private readonly workerId: string,
  ) {}

  /** Records one attempt's end; rejects (for the caller to retry) when Redis could not be reached. */
  finish(item: FinishItem): Promise<Finished> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= MAX_BATCH) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.scripts
      .finishMany(
        this.workerId,
        batch.map((p) => p.item),
      )
      .then(
        (results) => batch.forEach((p, i) => p.resolve(results[i]!)),
        (err: Error) => {
          // Redis answered with an error (one record it cannot read): the others must not share
          // its fate, so each is written on its own. An outage fails them all, to be retried.
          if (err instanceof ReplyError && batch.length > 1) {
            for (const p of batch) this.scripts.finishMany(this.workerId, [p.item]).then((r) => p.resolve(r[0]!), p.reject);
          } else {
            batch.forEach((p) => p.reject(err));
          }
        },
      );
  }
}
