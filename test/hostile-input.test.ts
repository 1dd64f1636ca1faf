/**
 * Input meant to break things: a deeply nested envelope (JSON.parse accepts it, JSON.stringify
 * overflows) is dead-lettered instead of circulating; an oversize submit is refused by the client
 * instead of leaving a QUEUED record nobody will run.
 */
import { TaskClient, TaskmeshError, loadConfig } from '@taskmesh/common';
import { Keys } from '@taskmesh/common/internal';
import { redis, waitFor } from './helpers';
import { Cluster } from './faults/cluster';

describe('hostile input', () => {
  const cluster = new Cluster({ label: 'hostile', workers: 1 });
  const r = redis();
  beforeAll(() => cluster.start());
  afterAll(async () => {
    await cluster.stop();
    r.disconnect();
  });

  test('a deeply nested envelope goes to dead; the distributor keeps serving', async () => {
    const keys = new Keys(cluster.prefix);
    const depth = 200000;
    const raw = `{"name":"echo","config":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    await r.lpush(keys.newTask, raw);
    const entry = await waitFor(
      'dead entry',
      async () => (await r.lrange(keys.dead, 0, -1)).map((e) => JSON.parse(e) as { reason: string; raw: string }).find((e) => e.raw === raw),
      10000,
    );
    expect(entry.reason).toMatch(/unusable envelope|not JSON/);
    expect(await r.llen(keys.intake(`d-${cluster.ports[0]}`))).toBe(0);
    const id = await cluster.client.submit('echo', { still: 'serving' });
    expect((await cluster.client.wait(id, { timeoutMs: 10000 })).state).toBe('END');
    expect(cluster.distributors[0]!.running).toBe(true);
  });

  test('an envelope over limits.max_message_bytes is refused at submit', async () => {
    const small = new TaskClient(loadConfig('cli', { redis: { url: cluster.redisUrl, prefix: cluster.prefix }, limits: { max_message_bytes: 1024 } }));
    try {
      await expect(small.submit('echo', { blob: 'x'.repeat(2000) })).rejects.toMatchObject({ code: 'BAD_ENVELOPE' });
      await expect(small.submit('echo', { blob: 'x'.repeat(2000) })).rejects.toBeInstanceOf(TaskmeshError);
      expect(await small.list()).toHaveLength(1);
    } finally {
      await small.close();
    }
  });
});

describe('envelopes a small-limit distributor must refuse', () => {
  const cluster = new Cluster({
    label: 'hostile-small',
    workers: 1,
    distributor: { limits: { max_message_bytes: 4096 } },
    worker: { limits: { max_message_bytes: 4096 } },
  });
  const r = redis();
  beforeAll(() => cluster.start());
  afterAll(async () => {
    await cluster.stop();
    r.disconnect();
  });

  const deadEntry = (keys: Keys, match: (e: { reason: string; raw: string }) => boolean) =>
    waitFor('dead entry', async () => (await r.lrange(keys.dead, 0, -1)).map((e) => JSON.parse(e) as { reason: string; raw: string }).find(match), 10000);

  test('an envelope under the limit whose config would not fit an assign frame is dead; the worker stays connected', async () => {
    const keys = new Keys(cluster.prefix);
    const raw = JSON.stringify({ name: 'echo', config: { s: 'x'.repeat(3500) } });
    expect(Buffer.byteLength(raw)).toBeLessThan(4096);
    await r.lpush(keys.newTask, raw);
    const entry = await deadEntry(keys, (e) => e.raw === raw);
    expect(entry.reason).toMatch(/does not fit limits.max_message_bytes/);
    const id = await cluster.client.submit('echo', { small: true });
    expect((await cluster.client.wait(id, { timeoutMs: 10000 })).state).toBe('END');
    expect(cluster.distributors[0]!.output).not.toMatch(/worker down/);
  });

  test('an envelope that is not valid UTF-8 is dead, not stuck in the processing list', async () => {
    const keys = new Keys(cluster.prefix);
    const bytes = Buffer.concat([Buffer.from('{"name":"echo","config":{"s":"caf'), Buffer.from([0xe9]), Buffer.from('"}}')]);
    await r.lpush(keys.newTask, bytes);
    const entry = await deadEntry(keys, (e) => e.reason === 'not valid UTF-8');
    expect(entry.raw).toContain('caf');
    expect(await r.llen(keys.intake(`d-${cluster.ports[0]}`))).toBe(0);
  });

  test('a task a client with a larger limit submitted is FAILED with the reason, not left QUEUED', async () => {
    const big = new TaskClient(loadConfig('cli', { redis: { url: cluster.redisUrl, prefix: cluster.prefix } }));
    try {
      const id = await big.submit('echo', { blob: 'x'.repeat(8000) });
      const rec = await big.wait(id, { timeoutMs: 10000 });
      expect(rec.state).toBe('FAILED');
      expect(rec.error).toMatch(/envelope refused: envelope is \d+ bytes, over the limit of 4096/);
      expect(rec.attempts).toBe(0);
      // Far over the limit (more than 16 times): refused without parsing, still FAILED, not QUEUED.
      const huge = await big.submit('echo', { blob: 'x'.repeat(80000) });
      const rec2 = await big.wait(huge, { timeoutMs: 10000 });
      expect(rec2.state).toBe('FAILED');
      expect(rec2.error).toMatch(/envelope refused/);
    } finally {
      await big.close();
    }
  });
});
