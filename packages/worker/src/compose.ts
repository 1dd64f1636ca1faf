/**
 * `compose` (the forerunner seed): steps run in series on one worker, each getting the previous
 * step's output; the first failure fails the task; the task's signal reaches every step.
 * A step is a function or the name of a task registered on the same worker.
 */
import type { TaskContext } from './context';
import type { TaskFunction } from './worker';

export type ComposeStep = string | ((input: unknown, ctx: TaskContext) => unknown);

export function compose(steps: readonly ComposeStep[]): TaskFunction<unknown> {
  if (steps.length === 0) throw new TypeError('compose needs at least one step');
  return async (config, ctx) => {
    let value: unknown = config;
    for (const step of steps) {
      ctx.signal.throwIfAborted();
      value = typeof step === 'string' ? await ctx.call(step, value) : await step(value, ctx);
    }
    return value;
  };
}
