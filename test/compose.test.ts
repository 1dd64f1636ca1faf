/**
 * compose (SPEC section 9) in a real worker: steps run in series, each gets the previous output;
 * the first failure fails the task at once and names the step; cancellation reaches the step that
 * is running; progress is one bar over the whole composition. (compose-steps.test.ts covers the
 * function on its own.)
 */
import { TaskClient, loadConfig, type TaskEvent } from '@taskmesh/common';
import { Distributor } from '@taskmesh/distributor';
import { compose, createWorker, sleep, type Worker } from '@taskmesh/worker';
import { cleanPrefix, clientConfig, distributorConfig, freePort, randomPrefix, waitFor, workerConfig } from './helpers';

describe('compose', () => {
  const prefix = randomPrefix('compose');
  let d: Distributor;
  let w: Worker;
  let client: TaskClient;
  const calls: string[] = [];
  let aborted: unknown;
  const events: TaskEvent[] = [];

  beforeAll(async () => {
    const port = await freePort();
    d = new Distributor(loadConfig('distributor', distributorConfig(prefix, port)));
    await d.start();
    w = createWorker(loadConfig('worker', workerConfig(prefix, [port], { id: 'compose-w' })));
    w.addTask('double', async (c: { n: number }) => {
      calls.push(`double(${c.n})`);
      return { n: c.n * 2 };
    });
    w.addTask('boom', async () => {
      calls.push('boom');
      throw new Error('step exploded');
    });
    w.addTask('wait_forever', async (_c, ctx) => {
      calls.push('wait_forever');
      try {
        await sleep(60000, ctx.signal);
      } catch (err) {
        aborted = err;
        throw err;
      }
    });
    w.addTask('halves', async (c: unknown, ctx) => {
      ctx.progress(1, 2, 'half');
      ctx.progress(2, 2);
      return c;
    });
    w.addTask('progressing', compose(['halves', (x) => x, 'halves']));
    w.on('task', (e) => events.push(e));
    w.addTask('pipeline', compose(['double', (x) => ({ n: (x as { n: number }).n + 1 }), 'double']));
    w.addTask('failing', compose(['double', 'boom', 'double']));
    w.addTask('cancellable', compose(['double', 'wait_forever', 'double']));
    await w.start();
    client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
    // The worker is connected once a first task has run.
    expect((await client.wait(await client.submit('double', { n: 0 }), { timeoutMs: 10000 })).state).toBe('END');
  });

  afterAll(async () => {
    await w?.close();
    await d?.close();
    await client?.close();
    await cleanPrefix(prefix);
  });

  test('steps run in series, each on the previous output', async () => {
    calls.length = 0;
    const r = await client.wait(await client.submit('pipeline', { n: 5 }), { timeoutMs: 10000 });
    expect(r.state).toBe('END');
    expect(r.result).toEqual({ n: 22 }); // ((5 * 2) + 1) * 2
    expect(calls).toEqual(['double(5)', 'double(11)']);
  });

  test('the first failure fails the task; later steps do not run', async () => {
    calls.length = 0;
    const r = await client.wait(await client.submit('failing', { n: 1 }, { max_attempts: 1 }), { timeoutMs: 10000 });
    expect(r.state).toBe('FAILED');
    expect(r.error).toBe('step 2 of 3 (boom) failed: step exploded');
    expect(calls).toEqual(['double(1)', 'boom']);
  });

  test('cancellation reaches the running step', async () => {
    calls.length = 0;
    const id = await client.submit('cancellable', { n: 1 });
    await waitFor('second step running', () => calls.includes('wait_forever'), 10000);
    await client.cancel(id);
    const r = await client.wait(id, { timeoutMs: 5000 });
    expect(r.state).toBe('CANCELLED');
    expect((aborted as { code?: string }).code).toBe('TASK_CANCELLED');
    expect(calls).toEqual(['double(1)', 'wait_forever']);
  });

  test('progress is one bar over all steps, each step scaled into its share', async () => {
    const id = await client.submit('progressing', {});
    expect((await client.wait(id, { timeoutMs: 10000 })).state).toBe('END');
    const bar = events.filter((e) => e.task === id && e.type === 'progress');
    expect(bar.map((e) => e.total)).toEqual(bar.map(() => 100));
    expect(bar.map((e) => e.done)).toEqual([0, 100 / 6, 33.33, 33.33, 66.67, 83.33, 100, 100].map((d) => Math.round(d * 100) / 100));
    expect(bar[1]?.message).toBe('step 1/3 halves: half');
  });
});
