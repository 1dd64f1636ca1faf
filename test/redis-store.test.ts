/**
 * RedisStore is the data model the mesh runs on, not a copy of it: a job created through the
 * Store API is a task record that the mesh's workers run, and its END result is the Store value
 * and reaches its notification targets.
 */
import { RedisStore, loadConfig } from '@taskmesh/common';
import { clientConfig, waitFor } from './helpers';
import { Cluster } from './faults/cluster';

describe('RedisStore on a running mesh', () => {
  const cluster = new Cluster({ label: 'rstore', workers: 1 });
  let store: RedisStore;
  beforeAll(async () => {
    await cluster.start();
    store = new RedisStore({ redis: loadConfig('cli', clientConfig(cluster.prefix)).redis, name: 'echo' });
  });
  afterAll(async () => {
    await store.close();
    await cluster.stop();
  });

  test('a job created in the store is run by a worker; its result is the value; its target is notified', async () => {
    const job = await store.create({ hello: 'store' });
    await store.queue(job.id, { mail: 'ops@example.com' });
    const done = await waitFor(
      'FULFILLED',
      async () => {
        const j = await store.get(job.id);
        return j?.state === 'FULFILLED' ? j : null;
      },
      10000,
    );
    expect(done.value).toEqual({ hello: 'store' });
    // The same record, seen as a task.
    const rec = await cluster.record(job.id);
    expect(rec).toMatchObject({ state: 'END', name: 'echo', worker: 'w1', completions: 1 });
    const n = (await store.pullNotification())!;
    expect(n).toMatchObject({ id: job.id, value: { hello: 'store' }, waiting: [{ mail: 'ops@example.com' }] });
    await n.done(n.waiting);
    expect(await store.pullNotification()).toBeUndefined();
  });

  test('a claim through the store is an assignment in the record, and its fulfil is fenced on it', async () => {
    // Store jobs of a name no worker runs, claimed and fulfilled by this process.
    const other = new RedisStore({ redis: loadConfig('cli', clientConfig(cluster.prefix)).redis, name: 'by-hand' });
    try {
      const job = await other.create({ n: 1 });
      const c = (await other.claim({ leaseMs: 2000 }))!;
      expect(c.id).toBe(job.id);
      const held = await cluster.record(job.id);
      expect(held).toMatchObject({ state: 'RUNNING', attempts: 1, epoch: 1 });
      expect(held.worker).toMatch(/^store-/);
      // A fenced write of an attempt that is not the claim's is refused, as any stale worker's is.
      expect(await other.fulfill(job.id, { stale: true }, { ...c, token: `${held.worker}|${held.epoch}|not-the-assignment` })).toBe('LEASE_LOST');
      expect(await other.fulfill(job.id, { done: true }, c)).toBe('FULFILLED');
      await c.release();
      expect(await cluster.record(job.id)).toMatchObject({ state: 'END', result: { done: true } });
    } finally {
      await other.close();
    }
  });
});
