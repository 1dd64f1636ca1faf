/**
 * compose on its own (packages/common/src/compose.ts), with a context shaped like the worker's:
 * series, the failing step named, aborts passed through untouched, and one progress bar over all
 * steps (the host hands a named step the context compose gives it, as the worker does).
 */
import { ComposeStepError, TaskAbortError, compose, type ComposeContext } from '@taskmesh/common';

interface Bar {
  done: number;
  total?: number;
  message?: string;
}

type Fn = (input: unknown, ctx: ComposeContext) => unknown;

/** A host context like the worker's: an object literal whose `call` runs registered functions. */
function host(tasks: Record<string, Fn>, opts: { passStepContext: boolean }): { ctx: ComposeContext; bars: Bar[]; ctrl: AbortController } {
  const bars: Bar[] = [];
  const ctrl = new AbortController();
  const ctx: ComposeContext = {
    signal: ctrl.signal,
    progress(done, total, message) {
      bars.push({ done, total, message });
    },
    async call(name, input, stepCtx) {
      const fn = tasks[name];
      if (!fn) throw new Error(`no task named ${name}`);
      // Today's worker hands the task its own context; a newer one may pass the step's.
      return fn(input, opts.passStepContext && stepCtx ? stepCtx : ctx);
    },
  };
  return { ctx, bars, ctrl };
}

const halfway: Fn = (input, ctx) => {
  ctx.progress(1, 2, 'half');
  ctx.progress(2, 2);
  return input;
};

describe.each([true])('compose (host passes the step context: %s)', (passStepContext) => {
  test('steps run in series on the previous output', async () => {
    const { ctx } = host({ double: (x) => ({ n: (x as { n: number }).n * 2 }) }, { passStepContext });
    const fn = compose(['double', (x) => ({ n: (x as { n: number }).n + 1 }), 'double']);
    expect(await fn({ n: 5 }, ctx)).toEqual({ n: 22 });
  });

  test('the first failure names its step (number, name, count) and keeps the cause; later steps do not run', async () => {
    const ran: string[] = [];
    const boom = new Error('step exploded');
    const { ctx } = host(
      {
        ok: (x) => (ran.push('ok'), x),
        boom: () => {
          ran.push('boom');
          throw boom;
        },
      },
      { passStepContext },
    );
    const err = await compose(['ok', 'boom', 'ok'])(1, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComposeStepError);
    expect(err).toMatchObject({ code: 'STEP_FAILED', step: 2, stepName: 'boom', steps: 3, message: 'step 2 of 3 (boom) failed: step exploded', cause: boom });
    expect(ran).toEqual(['ok', 'boom']);
    const fnErr = await compose([
      function parse() {
        throw new TypeError('bad input');
      },
    ])(1, ctx).catch((e: unknown) => e);
    expect((fnErr as Error).message).toBe('step 1 of 1 (parse) failed: bad input');
  });

  test("an abort is passed through as the run's own reason, and no later step starts", async () => {
    const ran: string[] = [];
    const h = host({}, { passStepContext });
    const reason = new TaskAbortError('TASK_CANCELLED', 'cancelled by a client');
    const fn = compose([
      async (x, c) => {
        ran.push('first');
        h.ctrl.abort(reason);
        c.signal.throwIfAborted();
        return x;
      },
      () => ran.push('second'),
    ]);
    await expect(fn(1, h.ctx)).rejects.toBe(reason);
    expect(ran).toEqual(['first']);
  });

  test('progress is one bar 0..100 over all steps, each step scaled into its share', async () => {
    const { ctx, bars } = host({ halfway }, { passStepContext });
    await compose(['halfway', halfway, (x) => x, 'halfway'])(null, ctx);
    expect(bars.every((b) => b.total === 100)).toBe(true);
    expect(bars.map((b) => b.done)).toEqual([0, 12.5, 25, 25, 37.5, 50, 50, 75, 87.5, 100, 100]);
    expect(bars[1]?.message).toBe('step 1/4 halfway: half');
    expect(bars[2]?.message).toBe('step 1/4 halfway');
    expect(bars.at(-1)?.message).toBe('done');
  });

  test('weights give steps unequal shares; a nested composition stays inside its share', async () => {
    const { ctx, bars } = host({ halfway }, { passStepContext });
    const inner = compose(['halfway', 'halfway']);
    await compose([inner, 'halfway'], { weights: [3, 1] })(null, ctx);
    const dones = bars.map((b) => b.done);
    // inner covers 0..75: its two halves are 0..37.5 and 37.5..75.
    expect(dones).toEqual([0, 0, 18.75, 37.5, 37.5, 56.25, 75, 75, 75, 87.5, 100, 100]);
    expect(dones.every((d, i) => i === 0 || d >= dones[i - 1]!)).toBe(true);
  });

  test('the host context is left as it was', async () => {
    const { ctx } = host({ halfway }, { passStepContext });
    const before = ctx.progress;
    await compose(['halfway'])(null, ctx);
    expect(ctx.progress).toBe(before);
    await compose([
      'halfway',
      () => {
        throw new Error('x');
      },
    ])(null, ctx).catch(() => undefined);
    expect(ctx.progress).toBe(before);
  });
});

test('compose refuses no steps, bad steps and bad weights', () => {
  expect(() => compose([])).toThrow('compose needs at least one step');
  expect(() => compose([3 as unknown as string])).toThrow('compose step 1: must be a task name or a function');
  expect(() => compose(['a', 'b'], { weights: [1] })).toThrow('compose weights: need 2 numbers > 0');
});
