/**
 * @taskmesh/worker: run task functions for a taskmesh mesh.
 *
 *   import { createWorker, compose } from '@taskmesh/worker';
 *   const worker = createWorker('config/worker.json');
 *   worker.addTask('resize', async (config, ctx) => {
 *     ctx.progress(1, 2, 'decoded');
 *     return { ok: true };                     // becomes the task's result
 *   });
 *   worker.addTask('fetch_and_pack', compose(['fetch', (input) => input, 'targz']));
 *   await worker.start();
 *   await worker.close();                      // drains, then stops what is left
 */
export { Worker, createWorker, type TaskFunction, type TaskInfo, type WorkerEvents } from './worker';
export type { AbortCode } from './run';
export { type TaskContext, type LogLevel } from './context';
export type { TaskEvent, TaskEventType } from '@taskmesh/common';
export { compose, ComposeStepError, type ComposeStep, type ComposeOptions } from './compose';
export { sleep } from './sleep';
export { loadTasks, cleanTaskName } from './task-loader';
