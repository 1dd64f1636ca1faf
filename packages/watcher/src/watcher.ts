/**
 * The watcher library. This first version follows a task's record in Redis and yields a `state`
 * event for each state change, ending when the task is terminal. Live progress, log and custom
 * events straight from the worker (docs/protocol.md, "watch") are not built yet.
 */
import { loadConfig, TaskClient, isTerminal, type CliConfig, type TaskEvent, type WatcherConfig } from '@taskmesh/common';

export interface WatchOptions {
  /** How often the record is read. Default 200 ms. */
  pollMs?: number;
  signal?: AbortSignal;
}

export class Watcher {
  private readonly client: TaskClient;

  constructor(readonly config: WatcherConfig | CliConfig) {
    this.client = new TaskClient(config);
  }

  /** Events of one task, in order, ending after its terminal state. */
  async *watch(id: string, opts: WatchOptions = {}): AsyncGenerator<TaskEvent> {
    const pollMs = opts.pollMs ?? 200;
    let lastKey = '';
    let seq = 0;
    let attempt = -1;
    while (!opts.signal?.aborted) {
      const r = await this.client.status(id);
      if (!r) throw new Error(`unknown task id: ${id}`);
      const key = `${r.attempts}/${r.state}`;
      if (key !== lastKey) {
        if (r.attempts !== attempt) {
          attempt = r.attempts;
          seq = 0;
        }
        lastKey = key;
        const ev: TaskEvent = { task: r.id, name: r.name, attempt: r.attempts, seq: ++seq, ts: r.updated_at ?? Date.now(), type: 'state', state: r.state };
        if (r.state === 'END') ev.result = r.result;
        if (r.state === 'FAILED' || r.state === 'CANCELLED') ev.error = r.error;
        yield ev;
        if (isTerminal(r.state)) return;
      }
      await new Promise((res) => setTimeout(res, pollMs));
    }
  }

  /** Calls handler for each event; returns a function that stops watching. */
  subscribe(id: string, handler: (ev: TaskEvent) => void, onError?: (err: Error) => void): () => void {
    const ctrl = new AbortController();
    void (async () => {
      try {
        for await (const ev of this.watch(id, { signal: ctrl.signal })) handler(ev);
      } catch (err) {
        onError?.(err as Error);
      }
    })();
    return () => ctrl.abort();
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

export function createWatcher(config: WatcherConfig | CliConfig | string): Watcher {
  return new Watcher(typeof config === 'string' ? loadConfig('watcher', config) : config);
}
