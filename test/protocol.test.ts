/**
 * SPEC sections 2 and 5: every frame is validated before use (decodeFrame), every envelope too
 * (parseEnvelope / validateEnvelope); and live, an authenticated peer that sends garbage, an unknown
 * frame type or a binary frame gets an `error` frame and stays connected, while an oversize frame
 * (over limits.max_message_bytes) is closed with 1009. The distributor keeps serving throughout.
 */
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { CloseCode, decodeFrame, encodeFrame, loadConfig, type Message, type TlsMaterial } from '@taskmesh/common';
import { connect, createLogger, parseEnvelope, validateEnvelope, type Channel } from '@taskmesh/common/internal';
import { Distributor } from '@taskmesh/distributor';
import { certFiles, cleanPrefix, distributorConfig, freePort, randomPrefix, SHARE_KEY, waitFor } from './helpers';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function expectBad(text: string, mention?: RegExp): void {
  const d = decodeFrame(text);
  expect({ text, ok: d.ok }).toEqual({ text, ok: false });
  if (d.ok) return;
  expect(d.error.closeCode).toBe(4004);
  expect(d.error.closeCode).toBe(CloseCode.PROTOCOL_ERROR);
  expect(typeof d.error.message).toBe('string');
  expect(d.error.message.length).toBeGreaterThan(0);
  if (mention) expect(d.error.message).toMatch(mention);
}

describe('decodeFrame', () => {
  const task = { id: 't1', name: 'echo', config: { a: 1 }, epoch: 1, assignment: 'as-1', attempt: 1, state_optional: false };
  const valid: Message[] = [
    { type: 'hello', v: 1, role: 'distributor', id: 'd1', nonce: 'n' },
    { type: 'hello', v: 1, role: 'worker', id: 'w1', nonce: 'n' },
    { type: 'auth', v: 1, role: 'worker', id: 'w1', nonce: 'n', mac: 'm' },
    { type: 'auth', v: 1, role: 'watcher', id: 'x1', nonce: 'n', mac: 'm' },
    { type: 'welcome', id: 'd1', mac: 'm' },
    { type: 'register', prefix: 'p:', tasks: ['echo', 'sleep'], concurrency: 4, running: 0, watch_host: '127.0.0.1', watch_port: 1234 },
    { type: 'ping', ts: Date.now() },
    { type: 'ping', ts: 1.5, running: 3 },
    { type: 'pong', ts: 1 },
    { type: 'assign', task },
    { type: 'assign', task: { ...task, config: null } },
    { type: 'reject', id: 't1', epoch: 1, assignment: 'as-1', reason: 'r', running: 0 },
    { type: 'done', id: 't1', epoch: 1, assignment: 'as-1', state: 'END', running: 0 },
    { type: 'release', id: 't1', epoch: 1, assignment: 'as-1', reason: 'r', running: 0 },
    { type: 'redis', up: true },
    { type: 'draining' },
    { type: 'revoke', id: 't1', epoch: 2, reason: 'taken-over' },
    { type: 'revoke', id: 't1', epoch: 2, reason: 'cancelled' },
    { type: 'error', code: 'BAD_FRAME', message: 'm' },
  ];

  test.each(valid.map((m) => [m.type, m] as const))('a valid %s frame decodes to itself', (_t, m) => {
    const d = decodeFrame(encodeFrame(m));
    expect(d).toEqual({ ok: true, msg: m });
  });

  test('unknown extra fields are tolerated', () => {
    const d = decodeFrame(JSON.stringify({ type: 'pong', ts: 5, extra: { nested: true } }));
    expect(d.ok).toBe(true);
  });

  test('non-JSON text is an error with close code 4004', () => {
    for (const t of ['', 'garbage', '{"type":"ping"', '{type: "ping", ts: 1}', '\u0000']) expectBad(t, /JSON/);
  });

  test('JSON that is not an object is an error', () => {
    for (const t of ['[]', '[{"type":"ping","ts":1}]', '42', '"ping"', 'null', 'true']) expectBad(t);
  });

  test('a missing or unknown type is an error', () => {
    for (const t of [
      '{}',
      '{"type":"frobnicate"}',
      '{"type":1,"ts":1}',
      '{"type":null}',
      '{"type":"PING","ts":1}',
      '{"type":"toString"}',
      '{"type":"__proto__"}',
      '{"type":"constructor"}',
    ]) {
      expectBad(t, /type/);
    }
  });

  test('missing fields are errors naming the field', () => {
    expectBad('{"type":"pong"}', /ts/);
    expectBad('{"type":"hello","v":1,"role":"distributor","id":"d"}', /nonce/);
    expectBad('{"type":"auth","v":1,"role":"worker","id":"w","nonce":"n"}', /mac/);
    expectBad('{"type":"register","prefix":"p","tasks":[],"concurrency":1,"running":0,"watch_host":"h"}', /watch_port/);
    expectBad('{"type":"assign"}', /task/);
    expectBad(JSON.stringify({ type: 'assign', task: { ...task, assignment: undefined } }), /task/);
    expectBad('{"type":"done","id":"t","epoch":1,"assignment":"a","running":0}', /state/);
    expectBad('{"type":"revoke","id":"t","epoch":1}', /reason/);
    expectBad('{"type":"error","code":"X"}', /message/);
  });

  test('mistyped fields are errors naming the field', () => {
    expectBad('{"type":"pong","ts":"now"}', /ts/);
    expectBad('{"type":"ping","ts":1,"running":-1}', /running/);
    expectBad('{"type":"ping","ts":1,"running":1.5}', /running/);
    expectBad('{"type":"ping","ts":1,"running":"2"}', /running/);
    expectBad('{"type":"hello","v":"1","role":"distributor","id":"d","nonce":"n"}', /\bv\b/);
    expectBad('{"type":"hello","v":1,"role":"watcher","id":"d","nonce":"n"}', /role/);
    expectBad('{"type":"auth","v":1,"role":"distributor","id":"w","nonce":"n","mac":"m"}', /role/);
    expectBad('{"type":"register","prefix":"p","tasks":"echo","concurrency":1,"running":0,"watch_host":"h","watch_port":1}', /tasks/);
    expectBad('{"type":"register","prefix":"p","tasks":[1],"concurrency":1,"running":0,"watch_host":"h","watch_port":1}', /tasks/);
    expectBad('{"type":"register","prefix":"p","tasks":[],"concurrency":-2,"running":0,"watch_host":"h","watch_port":1}', /concurrency/);
    expectBad(JSON.stringify({ type: 'assign', task: { ...task, epoch: '1' } }), /task/);
    expectBad(JSON.stringify({ type: 'assign', task: { ...task, state_optional: 'no' } }), /task/);
    expectBad('{"type":"assign","task":"t1"}', /task/);
    expectBad('{"type":"redis","up":"yes"}', /up/);
    expectBad('{"type":"revoke","id":"t","epoch":1,"reason":"because"}', /reason/);
    expectBad('{"type":"done","id":5,"epoch":1,"assignment":"a","state":"END","running":0}', /\bid\b/);
    expectBad(JSON.stringify({ type: 'welcome', id: 'x'.repeat(5000), mac: 'm' }), /\bid\b/);
  });

  test('decodeFrame never throws', () => {
    const inputs = [
      '{"type":"assign","task":null}',
      '{"type":"register","tasks":null}',
      '{"__proto__":{"type":"pong"},"ts":1}',
      '1e999',
      '{"type":"ping","ts":1e999}',
    ];
    for (const t of inputs) expect(() => decodeFrame(t)).not.toThrow();
    expect(decodeFrame('{"type":"ping","ts":1e999}').ok).toBe(false);
  });
});

describe('parseEnvelope / validateEnvelope', () => {
  test('a minimal envelope gets the defaults and a fresh UUID', () => {
    const a = validateEnvelope({ name: 'echo' });
    const b = validateEnvelope({ name: 'echo', config: { x: 1 } });
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(a.fields).toEqual({
      id: expect.stringMatching(UUID_V4),
      name: 'echo',
      config: '{}',
      max_attempts: 3,
      max_stalls: 5,
      priority: 0,
      state_optional: false,
      clean_end: false,
    });
    expect(b.fields.config).toBe('{"x":1}');
    expect(b.fields.id).not.toBe(a.fields.id);
  });

  test('every optional field is taken as given', () => {
    const id = '3b2f1c1e-9f0a-4c55-a1b2-0123456789ab';
    const r = validateEnvelope({
      id,
      name: 'my_task-2',
      config: { deep: { list: [1, 2] } },
      max_attempts: 1,
      max_stalls: 9,
      priority: -1000,
      state_optional: true,
      clean_end: true,
    });
    expect(r).toEqual({
      ok: true,
      fields: {
        id,
        name: 'my_task-2',
        config: '{"deep":{"list":[1,2]}}',
        max_attempts: 1,
        max_stalls: 9,
        priority: -1000,
        state_optional: true,
        clean_end: true,
      },
    });
  });

  test.each([
    ['not an object (array)', [], /object/],
    ['not an object (null)', null, /object/],
    ['not an object (string)', 'echo', /object/],
    ['no name', { config: {} }, /^name/],
    ['empty name', { name: '' }, /^name/],
    ['name with a space', { name: 'a b' }, /^name/],
    ['name with a dot', { name: 'a.b' }, /^name/],
    ['name of 129 characters', { name: 'n'.repeat(129) }, /^name/],
    ['numeric name', { name: 7 }, /^name/],
    ['id not a string', { name: 'echo', id: 12 }, /^id/],
    ['id with a slash', { name: 'echo', id: 'a/b' }, /^id/],
    ['empty id', { name: 'echo', id: '' }, /^id/],
    ['config an array', { name: 'echo', config: [1] }, /^config/],
    ['config null', { name: 'echo', config: null }, /^config/],
    ['config a number', { name: 'echo', config: 3 }, /^config/],
    ['max_attempts 0', { name: 'echo', max_attempts: 0 }, /^max_attempts/],
    ['max_attempts "3"', { name: 'echo', max_attempts: '3' }, /^max_attempts/],
    ['max_attempts 2.5', { name: 'echo', max_attempts: 2.5 }, /^max_attempts/],
    ['max_stalls 0', { name: 'echo', max_stalls: 0 }, /^max_stalls/],
    ['priority "high"', { name: 'echo', priority: 'high' }, /^priority/],
    ['priority 1.5', { name: 'echo', priority: 1.5 }, /^priority/],
    ['priority beyond the bound', { name: 'echo', priority: 1001 }, /^priority/],
    ['state_optional "yes"', { name: 'echo', state_optional: 'yes' }, /^state_optional/],
    ['state_optional 1', { name: 'echo', state_optional: 1 }, /^state_optional/],
    ['clean_end "true"', { name: 'echo', clean_end: 'true' }, /^clean_end/],
  ])('refused: %s', (_what, input, reason) => {
    const r = validateEnvelope(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  test('boundaries that are allowed', () => {
    expect(validateEnvelope({ name: 'n'.repeat(128) }).ok).toBe(true);
    expect(validateEnvelope({ name: 'echo', priority: 1000 }).ok).toBe(true);
    expect(validateEnvelope({ name: 'echo', max_attempts: 1, max_stalls: 1 }).ok).toBe(true);
  });

  test('parseEnvelope: non-JSON, and the size limit counted in UTF-8 bytes', () => {
    const bad = parseEnvelope('{"name":', 1000);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.reason).toMatch(/not JSON/);

    // Padding in an unknown field makes the envelope, not its config, the binding limit.
    const raw = JSON.stringify({ name: 'echo', config: { s: 'x'.repeat(50) }, pad: 'p'.repeat(2000) });
    const size = Buffer.byteLength(raw);
    expect(parseEnvelope(raw, size).ok).toBe(true);
    const over = parseEnvelope(raw, size - 1);
    expect(over.ok).toBe(false);
    if (!over.ok) expect(over.reason).toMatch(new RegExp(`${size} bytes.*${size - 1}`));

    // 1000 characters, 2000 bytes: the limit is in bytes.
    const wide = JSON.stringify({ name: 'echo', config: {}, pad: 'é'.repeat(1000) });
    expect(wide.length).toBeLessThan(1100);
    expect(parseEnvelope(wide, 1100).ok).toBe(false);

    // A config that would not fit in one assign frame (with room for the rest of the frame) is
    // refused even though the envelope itself is under the limit; a refused envelope with an id
    // says which task it named.
    const big = JSON.stringify({ id: 'big-1', name: 'echo', config: { s: 'x'.repeat(3500) } });
    const refused = parseEnvelope(big, 4096);
    expect(Buffer.byteLength(big)).toBeLessThan(4096);
    expect(refused).toMatchObject({ ok: false, id: 'big-1' });
    if (!refused.ok) expect(refused.reason).toMatch(/does not fit limits.max_message_bytes \(4096\)/);

    // The limit is checked before parsing: a huge non-JSON entry is refused for its size.
    const huge = parseEnvelope('x'.repeat(5000), 4096);
    expect(huge.ok).toBe(false);
    if (!huge.ok) expect(huge.reason).toMatch(/limit/);

    const good = parseEnvelope('{"name":"echo","config":{"a":1},"max_attempts":2}', 4096);
    expect(good.ok).toBe(true);
    if (good.ok) expect(good.fields).toMatchObject({ name: 'echo', config: '{"a":1}', max_attempts: 2 });
  });
});

describe('live frames against a distributor', () => {
  const prefix = randomPrefix('proto');
  const MAX = 4096;
  let distributor: Distributor;
  let port: number;
  const channels: Channel[] = [];
  const log = createLogger('worker', { id: 'protocol-test' });
  const files = certFiles('worker');
  const tls: TlsMaterial = { key: readFileSync(files.key, 'utf8'), cert: readFileSync(files.cert, 'utf8'), ca: readFileSync(files.ca, 'utf8') };

  /** An authenticated channel that records every frame and how it closed. */
  async function probe(id: string): Promise<{ ch: Channel; frames: Message[]; closed: { code?: number } }> {
    const ch = await connect({ id, role: 'worker', tls, shareKey: SHARE_KEY, host: '127.0.0.1', port, maxPayload: 1 << 20, allow: [], log });
    channels.push(ch);
    const frames: Message[] = [];
    const closed: { code?: number } = {};
    ch.on('message', (m) => frames.push(m));
    ch.on('close', (code) => (closed.code = code));
    return { ch, frames, closed };
  }

  const errorsIn = (frames: Message[]) => frames.filter((f): f is Extract<Message, { type: 'error' }> => f.type === 'error');

  async function pingPong(p: { ch: Channel; frames: Message[] }): Promise<void> {
    const ts = Math.random() * 1e6;
    p.ch.send({ type: 'ping', ts });
    await waitFor('pong', () => p.frames.some((f) => f.type === 'pong' && f.ts === ts), 5000);
  }

  beforeAll(async () => {
    port = await freePort();
    distributor = new Distributor(loadConfig('distributor', distributorConfig(prefix, port, { limits: { max_message_bytes: MAX } })));
    await distributor.start();
  });

  afterAll(async () => {
    for (const ch of channels) ch.close();
    await distributor?.close();
    await cleanPrefix(prefix);
  });

  test('garbage, unknown types, binary and unexpected frames get an error frame; the connection stays open', async () => {
    const p = await probe('proto-a');
    let n = 0;
    const expectError = async (send: () => void, code: string | RegExp, what: string) => {
      send();
      n++;
      await waitFor(`error frame for ${what}`, () => errorsIn(p.frames).length >= n, 5000);
      const e = errorsIn(p.frames)[n - 1]!;
      expect({ what, code: e.code }).toEqual({ what, code: expect.stringMatching(code) });
      expect(e.message.length).toBeGreaterThan(0);
      expect(p.ch.open).toBe(true);
    };
    await expectError(() => p.ch.ws.send('this is not json'), 'BAD_FRAME', 'garbage text');
    await expectError(() => p.ch.ws.send(JSON.stringify({ type: 'frobnicate', x: 1 })), 'BAD_FRAME', 'unknown type');
    await expectError(() => p.ch.ws.send(Buffer.from([0x7b, 0x00, 0xff]), { binary: true }), 'BAD_FRAME', 'binary frame');
    await expectError(() => p.ch.ws.send('{"type":"pong","ts":"soon"}'), 'BAD_FRAME', 'mistyped field');
    await expectError(() => p.ch.ws.send('[]'), 'BAD_FRAME', 'an array');
    // A well-formed frame a distributor never accepts from a worker.
    await expectError(() => p.ch.ws.send(JSON.stringify({ type: 'welcome', id: 'x', mac: 'y' })), /UNEXPECTED|BAD/, 'unexpected frame');
    // Still a working connection: a ping is answered.
    await pingPong(p);
    expect(p.closed.code).toBeUndefined();
  });

  test('a frame over limits.max_message_bytes is closed with 1009; other connections carry on', async () => {
    const bystander = await probe('proto-bystander');
    const p = await probe('proto-big');
    await pingPong(p);
    p.ch.ws.send(JSON.stringify({ type: 'pong', ts: 1, pad: 'x'.repeat(MAX * 2) }));
    await waitFor('oversize close', () => p.closed.code !== undefined, 5000);
    expect(p.closed.code).toBe(1009);
    expect(CloseCode.TOO_BIG).toBe(1009);

    // Just under the limit is fine on another connection.
    const q = await probe('proto-under');
    const under = JSON.stringify({ type: 'pong', ts: 2, pad: '' });
    q.ch.ws.send(JSON.stringify({ type: 'pong', ts: 2, pad: 'y'.repeat(MAX - under.length - 10) }));
    await pingPong(q);
    expect(q.ch.open).toBe(true);

    // The bystander never noticed, and new connections are accepted.
    await pingPong(bystander);
    expect(bystander.closed.code).toBeUndefined();
    const fresh = await probe('proto-fresh');
    await pingPong(fresh);
  });

  test('a bad frame during the handshake, or the wrong role, closes with a 4xxx code and no welcome', async () => {
    const attempt = (second: (ws: WebSocket, hello: Record<string, unknown>) => void) =>
      new Promise<{ code: number; frames: string[] }>((resolve) => {
        const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { key: tls.key, cert: tls.cert, ca: tls.ca });
        const frames: string[] = [];
        ws.on('error', () => undefined);
        ws.on('message', (d) => {
          frames.push(d.toString());
          if (frames.length === 1) second(ws, JSON.parse(d.toString()) as Record<string, unknown>);
        });
        ws.on('close', (code) => resolve({ code, frames }));
      });
    const garbage = await attempt((ws) => ws.send('not an auth frame'));
    expect(garbage.code).toBeGreaterThanOrEqual(4000);
    expect(garbage.code).toBeLessThan(5000);
    expect(garbage.frames.some((f) => f.includes('"welcome"'))).toBe(false);

    // A watcher is not accepted by a distributor (even with a plausible auth frame).
    const watcher = await attempt((ws, hello) =>
      ws.send(JSON.stringify({ type: 'auth', v: 1, role: 'watcher', id: 'proto-w', nonce: 'abc', mac: `${String(hello.nonce)}-not-a-mac` })),
    );
    expect(watcher.code).toBe(CloseCode.NOT_ALLOWED);
    expect(watcher.frames.some((f) => f.includes('"welcome"'))).toBe(false);
  });
});
