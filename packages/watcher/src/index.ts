/**
 * @taskmesh/watcher: live task events straight from the workers.
 *
 *   import { createWatcher } from '@taskmesh/watcher';
 *   const watcher = createWatcher('config/watcher.json');
 *   for await (const ev of watcher.watch(id)) console.log(ev.type, ev.seq, ev.done ?? ev.state);
 *   const stop = watcher.subscribe({ all: true }, (ev) => console.log(ev));
 *   stop();
 *   await watcher.close();
 */
export { Watcher, createWatcher, type WatcherOptions, type WatchOptions, type WatchFilter } from './watcher';
export { WATCH_QUEUE_MAX } from './watch-queue';
export type { ReconnectOptions } from './worker-link';
