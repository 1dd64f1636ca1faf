/**
 * `compose` (SPEC section 9, the forerunner seed): steps run in series in one task run, each given
 * the previous step's output. The first failure fails the whole at once and names the step; the
 * run's `signal` reaches whichever step is running; `ctx.progress` is one bar (0..100) over the
 * whole composition, each step's own progress scaled into its share.
 *
 * A step is a function or the name of a task registered on the same worker (run through
 * `ctx.call`). `common` cannot see the worker's `TaskContext`, so this takes any context with the
 * few members it uses; the worker re-exports it typed for its own context.
 */
import { TaskmeshError } from './errors';

/** What compose needs of a task context (the worker's `TaskContext` has all of it). */
export interface ComposeContext {
  readonly signal: AbortSignal;
  progress(done: number, total?: number, message?: string): void;
  /**
   * Runs a task registered on the same worker. Hosts should run it with `ctx` when given (the
   * step's view of the context, whose progress is scaled into the step's share).
   */
  call(name: string, input: unknown, ctx?: ComposeContext): Promise<unknown>;
}

export type ComposeStep<C extends ComposeContext = ComposeContext> = string | ((input: unknown, ctx: C) => unknown);

export interface ComposeOptions {
  /** Each step's share of the progress bar, one per step (> 0). @default equal shares */
  weights?: readonly number[];
}

/** The first failure of a composition: says which step, keeps the step's error as `cause`. */
export class ComposeStepError extends TaskmeshError {
  constructor(
    /** 1-based. */
    readonly step: number,
    readonly stepName: string,
    readonly steps: number,
    cause: unknown,
  ) {
    super('STEP_FAILED', `step ${step} of ${steps} (${stepName}) failed: ${cause instanceof Error ? cause.message || cause.name : String(cause)}`, { cause });
    this.name = 'ComposeStepError';
  }
}

function stepName(step: ComposeStep<never>, i: number): string {
  return typeof step === 'string' ? step : step.name || `step ${i + 1}`;
}

export function compose<C extends ComposeContext = ComposeContext>(
  steps: readonly ComposeStep<C>[],
  opts: ComposeOptions = {},
): (input: unknown, ctx: C) => Promise<unknown> {
  if (steps.length === 0) throw new TypeError('compose needs at least one step');
  steps.forEach((s, i) => {
    if (typeof s !== 'string' && typeof s !== 'function') throw new TypeError(`compose step ${i + 1}: must be a task name or a function`);
  });
  const weights = opts.weights ?? steps.map(() => 1);
  if (weights.length !== steps.length || weights.some((w) => !(Number.isFinite(w) && w > 0)))
    throw new TypeError(`compose weights: need ${steps.length} numbers > 0`);
  const total = weights.reduce((a, b) => a + b, 0);
  const names = steps.map((s, i) => stepName(s, i));

  return async (input, ctx) => {
    // Captured now: for a composition nested in another, this is the outer step's scaled bar.
    const base = ctx.progress;
    const report = (pct: number, message: string) => base.call(ctx, Math.round(pct * 100) / 100, 100, message);
    let value: unknown = input;
    let offset = 0;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i] as ComposeStep<C>;
      const share = weights[i] as number;
      const label = `step ${i + 1}/${steps.length} ${names[i]}`;
      const start = offset;
      const scaled = (done: number, of?: number, message?: string): void => {
        const frac = of !== undefined && of > 0 && Number.isFinite(done) ? Math.min(Math.max(done / of, 0), 1) : 0;
        report(((start + share * frac) / total) * 100, message ? `${label}: ${message}` : label);
      };
      // The step sees the caller's context with only `progress` changed.
      const view = Object.create(ctx, { progress: { value: scaled, enumerable: true } }) as C;
      ctx.signal.throwIfAborted();
      report((start / total) * 100, label);
      try {
        value = typeof step === 'string' ? await ctx.call(step, value, view) : await step(value, view);
      } catch (err) {
        // An abort is the run's own reason (cancel, takeover, stop), not this step's failure.
        if (ctx.signal.aborted) throw err;
        throw new ComposeStepError(i + 1, names[i] as string, steps.length, err);
      }
      offset += share;
    }
    report(100, 'done');
    return value;
  };
}
