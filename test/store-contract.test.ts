/**
 * The Store contract (SPEC section 9): every implementation runs this same suite. To add one, add a
 * row to IMPLEMENTATIONS: `open()` gives a fresh, empty store; `peer(store)` gives a second handle
 * on the same data as another process would see it (for MemoryStore, the same object).
 */
import { rmSync } from 'node:fs';

import { FsStore, LeaseLostError, MemoryStore, RedisStore, StoreError, loadConfig, type Store } from '@taskmesh/common';
import { cleanPrefix, clientConfig, randomPrefix, tmpDir, waitFor } from './helpers';

interface Implementation {
  open(): Store;
  peer(store: Store): Store;
}

const dirs = new Map<Store, string>();
const IMPLEMENTATIONS: Record<string, Implementation> = {
  MemoryStore: { open: () => new MemoryStore(), peer: (s) => s },
  FsStore: {
    open: () => {
      const dir = tmpDir('fs-store');
      const s = new FsStore({ dir });
      dirs.set(s, dir);
      return s;
    },
    peer: (s) => new FsStore({ dir: (s as FsStore).dir }),
  },
  // The data model of SPEC section 2 on the machine's Redis, a fresh prefix per store.
  RedisStore: {
    open: () => {
      const prefix = randomPrefix('store');
      const s = new RedisStore({ redis: loadConfig('cli', clientConfig(prefix)).redis });
      prefixes.set(s, prefix);
      return s;
    },
    peer: (s) => new RedisStore({ redis: loadConfig('cli', clientConfig((s as RedisStore).keys.prefix)).redis }),
  },
};
const prefixes = new Map<Store, string>();

/** Blocks the event loop, as a long GC pause or a CPU-bound task would: no timer can run. */
function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
}

describe.each(Object.entries(IMPLEMENTATIONS))('Store contract: %s', (_name, impl) => {
  let store: Store;
  const opened: Store[] = [];
  const open = (): Store => {
    const s = impl.open();
    opened.push(s);
    return s;
  };
  const peer = (s: Store): Store => {
    const p = impl.peer(s);
    opened.push(p);
    return p;
  };

  beforeEach(() => {
    store = open();
  });

  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    for (const [s, dir] of dirs) {
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(s);
    }
    for (const [s, prefix] of prefixes) {
      await cleanPrefix(prefix);
      prefixes.delete(s);
    }
  });

  describe('create and get', () => {
    test('a new job is PENDING with its request and a UUID', async () => {
      const job = await store.create({ calculate: '3+3' });
      expect(job.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(job).toMatchObject({ state: 'PENDING', request: { calculate: '3+3' }, waiting: [] });
      const got = await store.get(job.id);
      expect(got).toMatchObject({ id: job.id, state: 'PENDING', request: { calculate: '3+3' } });
      expect(got?.value).toBeUndefined();
      expect(typeof got?.createdAt).toBe('number');
    });

    test('an explicit id is kept; a second create with it is refused with JOB_EXISTS', async () => {
      await store.create(1, { id: 'job-1' });
      expect((await peer(store).get('job-1'))?.request).toBe(1);
      const err = await store.create(2, { id: 'job-1' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).toMatchObject({ code: 'JOB_EXISTS', message: 'job job-1 already exists' });
      expect((await store.get('job-1'))?.request).toBe(1);
    });

    test('an unknown id is undefined; an unsafe id is a TypeError', async () => {
      expect(await store.get('nope')).toBeUndefined();
      await expect(store.create(1, { id: '../escape' })).rejects.toThrow(TypeError);
    });

    test('what get returns is a copy, not the stored value', async () => {
      const job = await store.create({ list: [1] });
      ((await store.get(job.id))?.request as { list: number[] }).list.push(2);
      expect((await store.get(job.id))?.request).toEqual({ list: [1] });
    });
  });

  describe('claim, fulfill, release', () => {
    test('claim leases a PENDING job; while held nobody else gets it; release makes it claimable', async () => {
      const job = await store.create({ n: 1 });
      const c = await store.claim();
      expect(c?.id).toBe(job.id);
      expect(c?.job.request).toEqual({ n: 1 });
      expect(c?.expiresAt).toBeGreaterThan(Date.now());
      expect(await store.claim()).toBeUndefined();
      expect(await peer(store).claim()).toBeUndefined();
      await store.release(c!);
      const again = await peer(store).claim();
      expect(again?.id).toBe(job.id);
      expect(again?.token).not.toBe(c?.token);
      await again?.release();
    });

    test('fulfill records the value once; the job is then no longer claimable', async () => {
      const job = await store.create('req');
      const c = (await store.claim())!;
      expect(await store.fulfill(job.id, { answer: 6 }, c)).toBe('FULFILLED');
      await c.release();
      expect(await store.fulfill(job.id, { answer: 7 })).toBe('ALREADY_FULFILLED');
      const got = await peer(store).get(job.id);
      expect(got).toMatchObject({ state: 'FULFILLED', value: { answer: 6 }, request: 'req' });
      expect(got?.fulfilledAt).toBeGreaterThanOrEqual(got!.createdAt);
      expect(await store.claim()).toBeUndefined();
    });

    test('fulfilling an unknown job is JOB_NOT_FOUND', async () => {
      await expect(store.fulfill('missing', 1)).rejects.toMatchObject({ name: 'StoreError', code: 'JOB_NOT_FOUND', message: 'unknown job id: missing' });
    });

    test('a value of null is a value: the job is FULFILLED', async () => {
      const job = await store.create(null);
      expect(await store.fulfill(job.id, null)).toBe('FULFILLED');
      expect(await store.get(job.id)).toMatchObject({ state: 'FULFILLED', value: null });
    });

    test('parallel claimers on two handles never get the same job, and get them all', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 30; i++) ids.add((await store.create(i)).id);
      const other = peer(store);
      const got: string[] = [];
      const claimer = async (s: Store) => {
        for (;;) {
          const c = await s.claim({ leaseMs: 10000 });
          if (!c) return;
          got.push(c.id);
        }
      };
      await Promise.all([claimer(store), claimer(other), claimer(store), claimer(other)]);
      expect(got.length).toBe(30);
      expect(new Set(got)).toEqual(ids);
    });

    test('a renewed lease outlives leaseMs', async () => {
      await store.create(1);
      const lost = jest.fn();
      // Long enough that a loaded machine's event-loop stalls (a few hundred ms while the whole
      // suite runs on two cores) do not let it lapse; held for 2.5 times as long.
      const c = (await store.claim({ leaseMs: 1000, oncompromised: lost }))!;
      // A "must not happen" check: keep trying to take it for 2.5 s; every try must find it held.
      const until = Date.now() + 2500;
      let stolen = 0;
      await waitFor(
        '2.5 s held',
        async () => {
          if (await peer(store).claim({ leaseMs: 1000 })) stolen++;
          return Date.now() > until;
        },
        8000,
      );
      expect(stolen).toBe(0);
      expect(lost).not.toHaveBeenCalled();
      expect(c.compromised).toBe(false);
      expect(c.expiresAt).toBeGreaterThan(Date.now());
      await c.release();
    });
  });

  describe('a lost lease', () => {
    test('an expired lease calls oncompromised, aborts its signal, and lets another claimer in; its fulfill is refused', async () => {
      const job = await store.create('x');
      const lost: LeaseLostError[] = [];
      const c = (await store.claim({ leaseMs: 100, renew: false, oncompromised: (e) => lost.push(e) }))!;
      await waitFor('oncompromised', () => lost.length === 1, 3000);
      expect(lost[0]).toBeInstanceOf(LeaseLostError);
      expect(lost[0]).toMatchObject({ code: 'LEASE_LOST', reason: 'expired', jobId: job.id });
      expect(c.compromised).toBe(true);
      expect(c.signal.aborted).toBe(true);
      expect(c.signal.reason).toBe(lost[0]);
      const next = (await peer(store).claim())!;
      expect(next.id).toBe(job.id);
      expect(await store.fulfill(job.id, 'late', c)).toBe('LEASE_LOST');
      expect(await store.fulfill(job.id, 'current', next)).toBe('FULFILLED');
      expect((await store.get(job.id))?.value).toBe('current');
      await c.release(); // a compromised lease's release must not free the new holder's
      expect(await peer(store).fulfill(job.id, 'again', next)).toBe('ALREADY_FULFILLED');
      await next.release();
    });

    test('a holder that stalls past its lease is compromised even with renewal on', async () => {
      await store.create('x');
      const lost = jest.fn();
      const c = (await store.claim({ leaseMs: 120 }))!;
      c.oncompromised = lost; // set after claim, as in the seed
      stall(300);
      await waitFor('oncompromised after the stall', () => lost.mock.calls.length === 1, 3000);
      expect(lost.mock.calls[0]?.[0]).toMatchObject({ code: 'LEASE_LOST' });
      expect(await peer(store).claim()).toBeDefined();
    });

    test('release of a held lease does not call oncompromised', async () => {
      await store.create('x');
      const lost = jest.fn();
      const c = (await store.claim({ leaseMs: 80, oncompromised: lost }))!;
      await c.release();
      await c.release();
      const until = Date.now() + 250;
      await waitFor('past the old expiry', () => Date.now() > until, 2000);
      expect(lost).not.toHaveBeenCalled();
      expect(c.signal.aborted).toBe(false);
    });
  });

  describe('notification queue', () => {
    test('targets are pulled once the job is FULFILLED; done removes only what it lists', async () => {
      const job = await store.create('req');
      await store.queue(job.id, 'a');
      await store.queue(job.id, { url: 'http://b', n: 1 });
      expect(await store.pullNotification()).toBeUndefined(); // still PENDING
      expect((await store.get(job.id))?.waiting).toEqual(['a', { url: 'http://b', n: 1 }]);
      await store.fulfill(job.id, 42);
      const n = (await store.pullNotification())!;
      expect(n).toMatchObject({ id: job.id, value: 42 });
      expect(n.waiting).toEqual(['a', { url: 'http://b', n: 1 }]);
      expect(await peer(store).pullNotification()).toBeUndefined(); // exclusive
      await n.done(['a']);
      const again = (await peer(store).pullNotification())!;
      expect(again.waiting).toEqual([{ url: 'http://b', n: 1 }]);
      await store.done(again, [{ n: 1, url: 'http://b' }]); // equal as JSON: key order does not matter
      expect(await store.pullNotification()).toBeUndefined();
      expect((await store.get(job.id))?.waiting).toEqual([]);
    });

    test('queue is idempotent; unqueue and unqueueAll remove; unknown ids are JOB_NOT_FOUND', async () => {
      const job = await store.create(0);
      await store.queue(job.id, { a: 1, b: 2 });
      await store.queue(job.id, { b: 2, a: 1 });
      await store.queue(job.id, 'x');
      await store.queue(job.id, 'y');
      expect((await store.get(job.id))?.waiting).toEqual([{ a: 1, b: 2 }, 'x', 'y']);
      await store.unqueue(job.id, 'x');
      await store.unqueue(job.id, 'never queued');
      expect((await store.get(job.id))?.waiting).toEqual([{ a: 1, b: 2 }, 'y']);
      await store.unqueueAll(job.id, ['y', { a: 1, b: 2 }]);
      expect((await store.get(job.id))?.waiting).toEqual([]);
      await expect(store.queue('missing', 'x')).rejects.toMatchObject({ code: 'JOB_NOT_FOUND' });
    });

    test('a notification whose consumer never calls done is delivered again after its lease', async () => {
      const job = await store.create(0);
      await store.fulfill(job.id, 'v');
      await store.queue(job.id, 't');
      const lost = jest.fn();
      const first = (await store.pullNotification({ leaseMs: 100, renew: false, oncompromised: lost }))!;
      expect(first.waiting).toEqual(['t']);
      expect(await store.pullNotification()).toBeUndefined();
      const second = await waitFor('redelivery', () => peer(store).pullNotification(), 3000);
      expect(second.id).toBe(job.id);
      expect(second.waiting).toEqual(['t']);
      // The holder hears of it from its own expiry timer, which a loaded machine may run a moment
      // after the peer's claim came back: wait for it, then check it came once.
      await waitFor('the first lease reported lost', () => lost.mock.calls.length > 0, 3000);
      expect(lost).toHaveBeenCalledTimes(1);
      // The first consumer's late done still removes what it delivered (at least once, not lost).
      await first.done(['t']);
      await second.done([]);
      expect(await store.pullNotification()).toBeUndefined();
    });

    test('a target queued while a notification is out is delivered next time', async () => {
      const job = await store.create(0);
      await store.fulfill(job.id, 1);
      await store.queue(job.id, 'early');
      const n = (await store.pullNotification())!;
      await peer(store).queue(job.id, 'late');
      await n.done(n.waiting);
      const next = (await store.pullNotification())!;
      expect(next.waiting).toEqual(['late']);
      await next.done(['late']);
    });

    test('many jobs: every notification is pulled once per round by parallel consumers', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const j = await store.create(i);
        await store.fulfill(j.id, i * 10);
        await store.queue(j.id, `t${i}`);
        ids.push(j.id);
      }
      const seen: string[] = [];
      const consumer = async (s: Store) => {
        for (;;) {
          const n = await s.pullNotification({ leaseMs: 10000 });
          if (!n) return;
          seen.push(n.id);
          await n.done(n.waiting);
        }
      };
      await Promise.all([consumer(store), consumer(peer(store)), consumer(store)]);
      expect(seen.sort()).toEqual([...ids].sort());
    });
  });
});
