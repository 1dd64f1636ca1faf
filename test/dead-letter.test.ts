/**
 * SPEC section 2: producers LPUSH raw JSON envelopes onto `<prefix>new-task`. A malformed one (not
 * JSON, wrong types, over the size limit, the id of a finished task) lands in `<prefix>dead` as
 * `{reason, raw, at, distributor}` with a log line, never crashes the distributor and is never
 * dropped. Valid raw envelopes are consumed FIFO and get a record with the public fields.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  cleanPrefix,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  redis,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type Proc,
  countLogs,
} from './helpers';

interface DeadEntry {
  reason: string;
  raw: string;
  at: number;
  distributor: string;
}

const SPEC_FIELDS = [
  'id',
  'name',
  'config',
  'state',
  'attempts',
  'max_attempts',
  'stalls',
  'epoch',
  'worker',
  'distributor',
  'created_at',
  'started_at',
  'updated_at',
  'ended_at',
  'result',
  'error',
  'state_optional',
  'clean_end',
];

describe('dead letters and raw envelopes', () => {
  const prefix = randomPrefix('dead');
  const dir = tmpDir('dead');
  const tag = randomBytes(3).toString('hex');
  const procs: Proc[] = [];
  let r: Redis;
  let d: Proc;
  let distributorId: string;
  const newTask = `${prefix}new-task`;

  const record = (id: string) => r.hgetall(`${prefix}task:${id}`);
  const waitState = (id: string, state: string, ms = 15000) =>
    waitFor(`${id} ${state}`, async () => ((await r.hget(`${prefix}task:${id}`, 'state')) === state ? true : null), ms);
  const deadEntries = async (): Promise<DeadEntry[]> => (await r.lrange(`${prefix}dead`, 0, -1)).map((s) => JSON.parse(s) as DeadEntry);

  beforeAll(async () => {
    r = redis();
    const port = await freePort();
    distributorId = `d-${port}`;
    d = spawnBin(
      'distributor',
      ['--config', writeConfig(dir, 'd', distributorConfig(prefix, port, { limits: { max_message_bytes: 4096 } }))],
      {},
      'distributor',
    );
    procs.push(d);
    procs.push(spawnBin('worker', ['--config', writeConfig(dir, 'w', workerConfig(prefix, [port], { id: 'dead-w1' })), '--tasks', FIXTURE_TASKS], {}, 'w1'));
    await d.waitForLog('worker connected', { worker: 'dead-w1' });
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    r?.disconnect();
    await cleanPrefix(prefix);
  });

  test('malformed envelopes go to the dead list with a specific reason; the distributor keeps serving', async () => {
    // A task that ENDs first, so its id can be reused by a duplicate envelope.
    const doneId = `done-${tag}`;
    await r.lpush(newTask, JSON.stringify({ id: doneId, name: 'echo', config: { first: true } }));
    await waitState(doneId, 'END');
    const doneBefore = await record(doneId);

    const idWithBadConfig = `badcfg-${tag}`;
    const cases: Array<{ what: string; raw: string; reason: RegExp }> = [
      { what: 'not JSON', raw: `{"name": "echo", oops ${tag}`, reason: /not JSON/ },
      { what: 'a JSON array', raw: `["echo", {"tag": "${tag}"}]`, reason: /not a JSON object/ },
      { what: 'a JSON string', raw: JSON.stringify(`echo ${tag}`), reason: /not a JSON object/ },
      { what: 'no name', raw: JSON.stringify({ config: { tag } }), reason: /^name\b.*missing/ },
      { what: 'a name that is not a string', raw: JSON.stringify({ name: 42, config: { tag } }), reason: /^name\b/ },
      { what: 'a name with bad characters', raw: JSON.stringify({ name: 'ec ho/../x', config: { tag } }), reason: /^name\b.*\[A-Za-z0-9_-\]/ },
      { what: 'a name over 128 characters', raw: JSON.stringify({ name: 'n'.repeat(129), config: { tag } }), reason: /^name\b/ },
      { what: 'config not an object', raw: JSON.stringify({ id: idWithBadConfig, name: 'echo', config: [1, 2, tag] }), reason: /^config\b.*object/ },
      { what: 'config a string', raw: JSON.stringify({ name: 'echo', config: `x ${tag}` }), reason: /^config\b/ },
      { what: 'max_attempts 0', raw: JSON.stringify({ name: 'echo', config: { tag }, max_attempts: 0 }), reason: /^max_attempts\b/ },
      { what: 'max_attempts 1.5', raw: JSON.stringify({ name: 'echo', config: { tag }, max_attempts: 1.5 }), reason: /^max_attempts\b/ },
      { what: 'max_stalls "5"', raw: JSON.stringify({ name: 'echo', config: { tag }, max_stalls: '5' }), reason: /^max_stalls\b/ },
      { what: 'priority "high"', raw: JSON.stringify({ name: 'echo', config: { tag }, priority: 'high' }), reason: /^priority\b/ },
      { what: 'state_optional "yes"', raw: JSON.stringify({ name: 'echo', config: { tag }, state_optional: 'yes' }), reason: /^state_optional\b.*boolean/ },
      { what: 'clean_end 1', raw: JSON.stringify({ name: 'echo', config: { tag }, clean_end: 1 }), reason: /^clean_end\b.*boolean/ },
      { what: 'an id with a space', raw: JSON.stringify({ id: `has space ${tag}`, name: 'echo', config: { tag } }), reason: /^id\b/ },
      {
        what: 'over limits.max_message_bytes',
        raw: JSON.stringify({ name: 'echo', config: { tag, pad: 'x'.repeat(10 * 1024) } }),
        reason: /over the limit of 4096/,
      },
      {
        what: 'the id of a task that already ENDed',
        raw: JSON.stringify({ id: doneId, name: 'echo', config: { second: tag } }),
        reason: new RegExp(`${doneId}.*already exists.*END`),
      },
      {
        what: 'the id of an existing task with another name',
        raw: JSON.stringify({ id: doneId, name: 'sleep', config: { third: tag } }),
        reason: new RegExp(`${doneId}.*already exists`),
      },
    ];
    const t0 = Date.now();
    for (const c of cases) await r.lpush(newTask, c.raw);

    const entries = await waitFor('every malformed envelope in the dead list', async () => {
      const all = await deadEntries();
      return all.length >= cases.length ? all : null;
    });
    expect(entries).toHaveLength(cases.length);
    for (const c of cases) {
      const e = entries.find((x) => x.raw === c.raw);
      expect({ what: c.what, found: e !== undefined }).toEqual({ what: c.what, found: true });
      expect(Object.keys(e!).sort()).toEqual(['at', 'distributor', 'raw', 'reason']);
      expect({ what: c.what, reason: e!.reason }).toEqual({ what: c.what, reason: expect.stringMatching(c.reason) });
      expect(typeof e!.at).toBe('number');
      expect(e!.at).toBeGreaterThanOrEqual(t0 - 1000);
      expect(e!.at).toBeLessThanOrEqual(Date.now() + 1000);
      expect(e!.distributor).toBe(distributorId);
    }
    // Nothing was half-accepted: the intake list is empty and no record exists for the bad id.
    expect(await r.llen(newTask)).toBe(0);
    expect(await r.exists(`${prefix}task:${idWithBadConfig}`)).toBe(0);
    expect(await r.sismember(`${prefix}tasks`, idWithBadConfig)).toBe(0);
    // The finished task was not touched by its duplicate.
    expect(await record(doneId)).toEqual(doneBefore);
    // One log line per dead envelope, and the distributor is still up.
    await waitFor('dead envelope log lines', () => countLogs(d.output, 'dead envelope') >= cases.length);
    expect(d.running).toBe(true);

    // A valid raw envelope without an id still runs to END (the id is generated).
    await r.lpush(newTask, '{"name":"echo","config":{"a":1}}');
    const id = await waitFor('the generated task id', async () => {
      for (const tid of await r.smembers(`${prefix}tasks`)) {
        if ((await r.hget(`${prefix}task:${tid}`, 'config')) === '{"a":1}') return tid;
      }
      return null;
    });
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await waitState(id, 'END');
    const rec = await record(id);
    expect(JSON.parse(rec.result!)).toEqual({ a: 1 });
    expect(rec.worker).toBe('dead-w1');
    expect(d.running).toBe(true);
    expect(await r.llen(`${prefix}dead`)).toBe(cases.length);
  });

  test('raw envelopes with explicit ids are consumed FIFO and get records with the spec fields', async () => {
    const n = 40;
    const ids = Array.from({ length: n }, (_, i) => `fifo-${tag}-${i}`);
    // One LPUSH of e0..e39 leaves e0 at the right end: FIFO consumption takes it first.
    await r.lpush(newTask, ...ids.map((id, i) => JSON.stringify({ id, name: 'echo', config: { i } })));
    for (const id of ids) await waitState(id, 'END');
    const recs = await Promise.all(ids.map(record));
    const created = recs.map((x) => Number(x.created_at));
    for (let i = 1; i < n; i++) expect({ i, created: created[i]! >= created[i - 1]! }).toEqual({ i, created: true });
    // 40 intakes span several milliseconds, so the order is actually observed.
    expect(created[n - 1]!).toBeGreaterThan(created[0]!);

    recs.forEach((h, i) => {
      for (const f of SPEC_FIELDS) expect({ field: f, present: f in h }).toEqual({ field: f, present: true });
      expect(h.id).toBe(ids[i]);
      expect(h.name).toBe('echo');
      expect(JSON.parse(h.config!)).toEqual({ i });
      expect(h.state).toBe('END');
      expect(h.attempts).toBe('1');
      expect(h.max_attempts).toBe('3');
      expect(h.stalls).toBe('0');
      expect(h.epoch).toBe('1');
      expect(h.worker).toBe('dead-w1');
      expect(h.distributor).toBe(distributorId);
      const [c, s, u, e] = [h.created_at, h.started_at, h.updated_at, h.ended_at].map(Number);
      for (const t of [c, s, u, e]) expect(Number.isInteger(t) && t! > 1.6e12).toBe(true);
      expect(c).toBeLessThanOrEqual(s!);
      expect(s).toBeLessThanOrEqual(e!);
      expect(u).toBeGreaterThanOrEqual(e!);
      expect(JSON.parse(h.result!)).toEqual({ i });
      expect(h.error).toBe('');
      expect(h.state_optional).toBe('0');
      expect(h.clean_end).toBe('0');
    });
  });

  test('optional envelope fields are recorded as given', async () => {
    const id = `opts-${tag}`;
    await r.lpush(
      newTask,
      JSON.stringify({ id, name: 'echo', config: { o: 1 }, max_attempts: 5, max_stalls: 2, priority: 7, state_optional: true, clean_end: false }),
    );
    await waitState(id, 'END');
    const h = await record(id);
    expect(h).toMatchObject({ id, name: 'echo', max_attempts: '5', max_stalls: '2', priority: '7', state_optional: '1', clean_end: '0', attempts: '1' });
    expect(JSON.parse(h.result!)).toEqual({ o: 1 });
  });

  test('bad envelopes in one batch with good ones: the good ones are recorded at once, the bad ones dead', async () => {
    const good = Array.from({ length: 50 }, (_, i) => `mix-${tag}-${i}`);
    // One LPUSH: the distributor takes them as one batch. The bad ones name no id.
    const raws = good.flatMap((id, i) => [JSON.stringify({ id, name: 'echo', config: { i } }), ...(i % 10 === 0 ? [`not json ${tag} ${i}`] : [])]);
    const deadBefore = (await deadEntries()).length;
    const t0 = Date.now();
    await r.lpush(newTask, ...raws);
    await waitFor(
      'every good envelope recorded',
      async () => (await Promise.all(good.map((id) => r.exists(`${prefix}task:${id}`)))).every((x) => x === 1),
      5000,
    );
    // Recorded in the batch itself, not by the own-tasks loop re-reading the processing list later.
    expect(Date.now() - t0).toBeLessThan(1000);
    for (const id of good) await waitState(id, 'END');
    const dead = (await deadEntries()).slice(0, (await deadEntries()).length - deadBefore);
    expect(dead.filter((e) => e.raw.startsWith(`not json ${tag}`))).toHaveLength(5);
    expect(await r.llen(`${prefix}intake:${distributorId}`)).toBe(0);
    // Every write of that batch worked the first time: nothing was left for a later re-read.
    expect(d.output).not.toMatch(/intake failed|could not dead-letter|WRONGTYPE/);
  });
});
