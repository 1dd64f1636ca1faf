/**
 * The Queue contract (SPEC section 9): every kind on every backend runs this same suite, against the
 * real Redis for RedisQueue (a random key prefix per run; only our keys are deleted). To add a
 * backend, add a row to BACKENDS: `open(opts)` gives an empty queue; `sibling(q, opts)` gives a
 * second handle on the same queue as another process would have it (own connection).
 */
import { join } from 'node:path';

import { Redis } from 'ioredis';

import { MemoryQueue, QueueError, RedisQueue, type Queue, type QueueItem, type QueueKind, type QueueOptions } from '@taskmesh/common';
import { ROOT, cleanPrefix, randomPrefix, redis } from './helpers';

type Opts = QueueOptions<Item>;
interface Item extends QueueItem {
  readonly name: string;
  readonly n?: number;
  readonly producer?: number;
  readonly config?: unknown;
}

interface Backend {
  open(opts: Opts): Queue<Item>;
  sibling(q: Queue<Item>, opts: Opts): Queue<Item>;
}

const prefix = randomPrefix('queue');
const connections: Redis[] = [];
let names = 0;
const BACKENDS: Record<string, Backend> = {
  memory: { open: (opts) => new MemoryQueue<Item>(opts), sibling: (q) => q },
  redis: {
    open: (opts) => {
      const r = redis();
      connections.push(r);
      return new RedisQueue<Item>({ ...opts, redis: r, prefix, name: `q${names++}` });
    },
    sibling: (q, opts) => {
      const r = redis();
      connections.push(r);
      return new RedisQueue<Item>({ ...opts, redis: r, prefix, name: (q as RedisQueue<Item>).key.slice(prefix.length) });
    },
  },
};

afterAll(async () => {
  await Promise.all(connections.map((r) => r.quit().catch(() => undefined)));
  await cleanPrefix(prefix);
});

async function drain(q: Queue<Item>): Promise<Item[]> {
  const out: Item[] = [];
  for (let it = await q.pop(); it; it = await q.pop()) out.push(it);
  return out;
}

/** Pearson's statistic. */
function chiSquare(observed: number[], expected: number[]): number {
  return observed.reduce((sum, o, i) => sum + (o - expected[i]!) ** 2 / expected[i]!, 0);
}

/** Upper critical values at p = 0.0001 (a correct queue fails one run in 10,000). */
const CHI2_P0001 = { 2: 18.42, 9: 33.72 } as const;
const DRAWS = 10000;

/**
 * Keeps 10 items waiting; each draw pops one and pushes a fresh one. Returns how often the popped
 * item was the oldest waiting, the second oldest, ...: uniform for a random queue, all "oldest"
 * for FIFO.
 */
async function ageRanks(q: Queue<Item>): Promise<number[]> {
  const K = 10;
  const waiting: number[] = [];
  let n = 0;
  for (; n < K; n++) {
    await q.push({ name: 'r', n });
    waiting.push(n);
  }
  const ranks = new Array<number>(K).fill(0);
  for (let d = 0; d < DRAWS; d++) {
    const it = (await q.pop())!;
    const rank = waiting.indexOf(it.n!);
    ranks[rank]!++;
    waiting.splice(rank, 1);
    await q.push({ name: 'r', n });
    waiting.push(n++);
  }
  return ranks;
}

/** Keeps one item per name waiting; returns how often each name was drawn. */
async function nameDraws(q: Queue<Item>, names: string[]): Promise<number[]> {
  for (const name of names) await q.push({ name });
  const counts = names.map(() => 0);
  for (let d = 0; d < DRAWS; d++) {
    const it = (await q.pop())!;
    counts[names.indexOf(it.name)]!++;
    await q.push({ name: it.name });
  }
  return counts;
}

describe.each(Object.entries(BACKENDS))('Queue contract: %s', (_backend, backend) => {
  describe.each(['fifo', 'priority', 'random', 'weighted'] as QueueKind[])('%s', (kind) => {
    test('empty: pop is undefined, size 0; items come back whole, each exactly once; clear empties', async () => {
      const q = backend.open({ kind });
      expect(q.kind).toBe(kind);
      expect(await q.pop()).toBeUndefined();
      expect(await q.size()).toBe(0);
      const items: Item[] = Array.from({ length: 25 }, (_, n) => ({ name: `t${n % 3}`, n, config: { deep: [n, { s: 'x' }] }, priority: n % 4 }));
      for (const it of items) await q.push(it);
      expect(await q.size()).toBe(25);
      const out = await drain(q);
      expect(out.sort((a, b) => a.n! - b.n!)).toEqual(items);
      expect(await q.size()).toBe(0);
      for (const it of items.slice(0, 5)) await q.push(it);
      await q.clear();
      expect(await q.size()).toBe(0);
      expect(await q.pop()).toBeUndefined();
      await q.close();
    });
  });

  test('priority: outside -1000..1000 or not an integer is refused with BAD_ITEM', async () => {
    const q = backend.open({ kind: 'priority' });
    for (const priority of [1001, -1001, 1.5]) {
      const err = await q.push({ name: 'x', priority }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QueueError);
      expect(err).toMatchObject({ code: 'BAD_ITEM', message: `priority: must be an integer from -1000 to 1000, got ${priority}` });
    }
    expect(await q.size()).toBe(0);
  });

  test('fifo: first in, first out', async () => {
    const q = backend.open({ kind: 'fifo' });
    for (let n = 0; n < 20; n++) await q.push({ name: 'f', n });
    expect((await drain(q)).map((i) => i.n)).toEqual(Array.from({ length: 20 }, (_, n) => n));
  });

  test('priority: higher first, first in first out within a priority; no priority is 0', async () => {
    const q = backend.open({ kind: 'priority' });
    const pushes: Item[] = [
      { name: 'a', n: 0, priority: 1 },
      { name: 'a', n: 1 },
      { name: 'a', n: 2, priority: 5 },
      { name: 'a', n: 3, priority: -3 },
      { name: 'a', n: 4, priority: 1 },
      { name: 'a', n: 5, priority: 0 },
      { name: 'a', n: 6, priority: 5 },
      { name: 'a', n: 7, priority: 1000 },
      { name: 'a', n: 8, priority: -1000 },
    ];
    for (const it of pushes) await q.push(it);
    expect((await drain(q)).map((i) => i.n)).toEqual([7, 2, 6, 0, 4, 1, 5, 3, 8]);
  });

  test('priority order holds under concurrent producers', async () => {
    const q = backend.open({ kind: 'priority' });
    const PRODUCERS = 4;
    const EACH = 60;
    await Promise.all(
      Array.from({ length: PRODUCERS }, async (_, producer) => {
        const mine = backend.sibling(q, { kind: 'priority' });
        for (let n = 0; n < EACH; n++) await mine.push({ name: 'p', producer, n, priority: [3, -1, 0, 7, 3][(n * 7 + producer) % 5] });
      }),
    );
    const out = await drain(q);
    expect(out.length).toBe(PRODUCERS * EACH);
    for (let i = 1; i < out.length; i++) {
      const [a, b] = [out[i - 1]!, out[i]!];
      expect(a.priority!).toBeGreaterThanOrEqual(b.priority!);
      // Within one priority, each producer's items in the order it pushed them.
      if (a.priority === b.priority && a.producer === b.producer) expect(a.n!).toBeLessThan(b.n!);
    }
    // The producers really interleaved: not one producer's whole batch after another's.
    const firstPriority = out.filter((i) => i.priority === 7).map((i) => i.producer);
    expect(new Set(firstPriority.slice(0, 12)).size).toBeGreaterThan(1);
  });

  test('weighted: a weight of 0, a negative or a non-number is refused with BAD_ITEM', async () => {
    const q = backend.open({ kind: 'weighted', weights: { zero: 0 }, weight: undefined });
    await expect(q.push({ name: 'zero' })).rejects.toMatchObject({ code: 'BAD_ITEM', message: 'weight: must be a finite number > 0, got 0 for zero' });
    const f = backend.open({ kind: 'weighted', weight: (i) => i.n ?? Number.NaN });
    await expect(f.push({ name: 'x', n: -2 })).rejects.toMatchObject({ code: 'BAD_ITEM' });
    await expect(f.push({ name: 'x' })).rejects.toMatchObject({ code: 'BAD_ITEM' });
    expect(await f.size()).toBe(0);
  });

  describe(`distributions over ${DRAWS} draws`, () => {
    test('random: the item drawn is uniform over the waiting ones; the same check fails on FIFO', async () => {
      const ranks = await ageRanks(backend.open({ kind: 'random' }));
      const expected = ranks.map(() => DRAWS / ranks.length);
      expect(chiSquare(ranks, expected)).toBeLessThan(CHI2_P0001[9]);
      const fifo = await ageRanks(backend.open({ kind: 'fifo' }));
      expect(fifo[0]).toBe(DRAWS);
      expect(chiSquare(fifo, expected)).toBeGreaterThan(CHI2_P0001[9]);
    }, 60000);

    test.each([
      ['a weight per task name', { weights: { light: 1, mid: 2, heavy: 7 } }],
      ['a function of the envelope', { weight: (i: Item) => ({ light: 1, mid: 2, heavy: 7 })[i.name] ?? 1 }],
    ] as const)(
      'weighted by %s: drawn in proportion 1:2:7; the same check fails on FIFO',
      async (_how, opts) => {
        const names = ['light', 'mid', 'heavy'];
        const expected = [0.1, 0.2, 0.7].map((p) => p * DRAWS);
        const counts = await nameDraws(backend.open({ kind: 'weighted', ...opts }), names);
        expect(chiSquare(counts, expected)).toBeLessThan(CHI2_P0001[2]);
        const fifo = await nameDraws(backend.open({ kind: 'fifo' }), names);
        expect(chiSquare(fifo, expected)).toBeGreaterThan(CHI2_P0001[2]);
      },
      60000,
    );
  });
});

describe('RedisQueue on the data model', () => {
  const r = redis();
  afterAll(() => r.quit());

  test('fifo named new-task is the intake list: producers LPUSH, the queue pops oldest first', async () => {
    const q = new RedisQueue<Item>({ kind: 'fifo', redis: r, prefix, name: 'new-task' });
    await r.lpush(`${prefix}new-task`, JSON.stringify({ name: 'resize', config: { w: 1 } }));
    await q.push({ name: 'resize', config: { w: 2 } });
    expect(await r.lrange(`${prefix}new-task`, 0, -1)).toEqual([
      JSON.stringify({ name: 'resize', config: { w: 2 } }),
      JSON.stringify({ name: 'resize', config: { w: 1 } }),
    ]);
    expect(await q.pop()).toEqual({ name: 'resize', config: { w: 1 } });
    expect(await q.pop()).toEqual({ name: 'resize', config: { w: 2 } });
  });

  test('a malformed entry is removed and handed to the caller in a QueueError', async () => {
    const q = new RedisQueue<Item>({ kind: 'fifo', redis: r, prefix, name: 'bad' });
    await r.lpush(`${prefix}bad`, 'not json{');
    const err = await q.pop().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueError);
    expect(err).toMatchObject({ code: 'BAD_ITEM', raw: 'not json{' });
    expect(await q.size()).toBe(0);
  });

  test('every script is idempotent: a re-sent push or pop (same operation key) does not repeat', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the scripts' text is not public; the test re-sends them by hand
    const lua = require(join(ROOT, 'packages', 'common', 'dist', 'queue', 'lua.js')) as typeof import('../packages/common/src/queue/lua');
    const k = `${prefix}idem`;
    const run = (s: { lua: string; keys: number }, keys: string[], args: (string | number)[]) => r.eval(s.lua, s.keys, ...keys, ...args);
    expect(await run(lua.PUSH_LIST, [k, `${k}:op:1`], ['x', 10000])).toBe(1);
    expect(await run(lua.PUSH_LIST, [k, `${k}:op:1`], ['x', 10000])).toBe(0);
    expect(await r.llen(k)).toBe(1);
    await r.lpush(k, 'y');
    expect(await run(lua.POP_LIST, [k, `${k}:op:2`], [10000])).toBe('x');
    expect(await run(lua.POP_LIST, [k, `${k}:op:2`], [10000])).toBe('x');
    expect(await r.lrange(k, 0, -1)).toEqual(['y']);
    const z = `${prefix}idem-z`;
    expect(await run(lua.PUSH_SCORED, [z, `${z}:seq`, `${z}:op:3`], ['m1\n{}', 'priority', 2, 10000])).toBe(1);
    expect(await run(lua.PUSH_SCORED, [z, `${z}:seq`, `${z}:op:3`], ['m1\n{}', 'priority', 2, 10000])).toBe(0);
    expect(await r.get(`${z}:seq`)).toBe('1');
    expect(await run(lua.PUSH_SCORED, [z, `${z}:clock`, `${z}:op:4`], ['m2\n{}', 'draw', 0.5, 10000])).toBe(1);
    expect(await run(lua.POP_SCORED, [z, `${z}:clock`, `${z}:op:5`], [10000, 'draw'])).toBe('m1\n{}');
    expect(await run(lua.POP_SCORED, [z, `${z}:clock`, `${z}:op:5`], [10000, 'draw'])).toBe('m1\n{}');
    expect(await r.zcard(z)).toBe(1);
  });

  test('two prefixes on one Redis stay apart', async () => {
    const other = randomPrefix('queue-other');
    try {
      const a = new RedisQueue<Item>({ kind: 'priority', redis: r, prefix, name: 'apart' });
      const b = new RedisQueue<Item>({ kind: 'priority', redis: r, prefix: other, name: 'apart' });
      await a.push({ name: 'mine' });
      expect(await b.pop()).toBeUndefined();
      expect(await a.pop()).toEqual({ name: 'mine' });
    } finally {
      await cleanPrefix(other);
    }
  });
});
