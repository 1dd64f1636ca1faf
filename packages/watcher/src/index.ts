/**
 * @taskmesh/watcher: follow tasks as they run.
 *
 *   import { createWatcher } from '@taskmesh/watcher';
 *   const watcher = createWatcher('config/watcher.json');
 *   for await (const ev of watcher.watch(id)) console.log(ev.type, ev.state);
 *   await watcher.close();
 */
export { Watcher, createWatcher, type WatchOptions } from './watcher';
