/**
 * The JSON Schema published in docs/schema (for workers, watchers and producers in other
 * languages): it is what the TypeBox definitions generate today, a generic validator (Ajv, JSON
 * Schema 2020-12) accepts the samples of docs/protocol.md with it, and it accepts and refuses what
 * the reference implementation (decodeFrame, validateEnvelope) does.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { decodeFrame } from '@taskmesh/common';
import { CONNECTION_FRAMES, FRAME_SCHEMAS, schemaFiles, validateEnvelope } from '@taskmesh/common/internal';
import { ROOT } from './helpers';

const SCHEMA_DIR = join(ROOT, 'docs', 'schema');
const published = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(SCHEMA_DIR, file), 'utf8')) as Record<string, unknown>;

describe('docs/schema', () => {
  test('is what the TypeBox definitions generate (else run: pnpm run schema)', () => {
    const files = schemaFiles();
    const onDisk = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.schema.json'));
    expect(onDisk.sort()).toEqual(Object.keys(files).sort());
    for (const [file, text] of Object.entries(files)) {
      expect({ file, text: readFileSync(join(SCHEMA_DIR, file), 'utf8') }).toEqual({ file, text });
    }
  });

  test('publishes every frame type, each as its own $defs entry', () => {
    const types = new Set<string>(['batch', ...CONNECTION_FRAMES.frames, ...CONNECTION_FRAMES.watch]);
    expect([...types].sort()).toEqual(Object.keys(FRAME_SCHEMAS).sort());
    for (const [file, list] of [
      ['frames.schema.json', CONNECTION_FRAMES.frames],
      ['watch.schema.json', CONNECTION_FRAMES.watch],
    ] as const) {
      const defs = published(file).$defs as Record<string, { properties?: { type?: { const?: string } } }>;
      for (const t of [...list, 'batch']) expect({ file, t, type: defs[t]?.properties?.type?.const }).toEqual({ file, t, type: t });
    }
  });
});

describe('refusals derived from the schema', () => {
  // docs/protocol.md section 6 documents these: the field, what it should be, and what came.
  test.each([
    ['{"type":"pong"}', 'pong.ts: missing, expected a finite number'],
    ['{"type":"ping","ts":"now"}', 'ping.ts: expected a finite number, got "now"'],
    ['{"type":"ping","ts":1e999}', 'ping.ts: expected a finite number, got Infinity'],
    ['{"type":"ping","ts":1,"running":-1}', 'ping.running: expected a safe integer >= 0, got -1'],
    ['{"type":"hello","v":1,"role":"watcher","id":"d","nonce":"n"}', 'hello.role: expected "distributor" or "worker", got "watcher"'],
    [
      '{"type":"register","prefix":"p","tasks":["a",7],"concurrency":1,"running":0,"watch_host":"h","watch_port":1}',
      'register.tasks[1]: expected a string of at most 256 characters, got 7',
    ],
    ['{"type":"assign","task":"t1"}', 'assign.task: expected a JSON object, got "t1"'],
    [
      '{"type":"assign","task":{"id":"t","name":"n","config":{},"epoch":-1,"assignment":"a","attempt":1,"state_optional":false}}',
      'assign.task.epoch: expected a safe integer >= 0, got -1',
    ],
    [
      '{"type":"done","id":"t","epoch":1,"assignment":"a","state":"DONE","running":0}',
      'done.state: expected one of "END", "FAILED", "CANCELLED", "STOPPED", "TAKEN_OVER", got "DONE"',
    ],
    [
      JSON.stringify({ type: 'welcome', id: 'x'.repeat(5000), mac: 'm' }),
      'welcome.id: expected a string of at most 4096 characters, got a string of 5000 characters',
    ],
    ['{"type":"watch","sub":"s","all":false}', 'watch.all: expected true, got false'],
    ['{"type":"batch","frames":[]}', 'batch.frames: expected an array of 1 to 1000 items, got an array of 0 items'],
    ['{"type":"batch","frames":[{"type":"pong","ts":1},{"type":"batch","frames":[]}]}', 'batch.frames[1]: a batch cannot hold a batch'],
    ['{"type":"batch","frames":[{"type":"pong","ts":1},[]]}', 'batch.frames[1]: frame is not a JSON object'],
    [
      '{"type":"batch","frames":[{"type":"event","sub":"s","event":{"task":"t","name":"n","attempt":1,"seq":1,"ts":1,"type":"odd"}}]}',
      'batch.frames[0]: event.event.type: expected one of "state", "progress", "log", "event", "gap", got "odd"',
    ],
  ])('%s', (text, message) => {
    const d = decodeFrame(text);
    expect(d.ok ? null : { code: d.error.closeCode, message: d.error.message }).toEqual({ code: 4004, message });
  });
});

describe('the published schema with a generic validator', () => {
  // strict: an unknown keyword or a schema Ajv would read differently is an error, not ignored.
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  const envelope = ajv.compile(published('envelope.schema.json'));
  const frames = ajv.compile(published('frames.schema.json'));
  const watch = ajv.compile(published('watch.schema.json'));
  const taskEvent = ajv.getSchema('urn:taskmesh:protocol:1:watch#/$defs/task-event') as ValidateFunction;
  const docFor = (type: string): ValidateFunction[] => [
    ...((CONNECTION_FRAMES.frames as readonly string[]).includes(type) ? [frames] : []),
    ...((CONNECTION_FRAMES.watch as readonly string[]).includes(type) ? [watch] : []),
  ];

  const valid = (v: ValidateFunction, sample: unknown): { sample: unknown; errors: unknown } => ({ sample, errors: v(sample) ? null : v.errors });

  /**
   * The JSON samples of docs/protocol.md: captured frames (`D→W {…}`, `W→C {…}`, a batch may span
   * lines), frames quoted inline (`{"type":…}`), events and envelopes on lines of their own.
   */
  function samples(): { frames: Array<{ doc: ValidateFunction[]; frame: Record<string, unknown> }>; events: unknown[]; envelopes: unknown[] } {
    const text = readFileSync(join(ROOT, 'docs', 'protocol.md'), 'utf8');
    const out = { frames: [] as Array<{ doc: ValidateFunction[]; frame: Record<string, unknown> }>, events: [] as unknown[], envelopes: [] as unknown[] };
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const arrow = /^(D→W|W→D|W→C|C→W) (\{.*)$/.exec(lines[i]!);
      if (arrow) {
        let json = arrow[2]!;
        while (!parses(json) && i + 1 < lines.length) json += lines[++i]!.trim();
        const frame = JSON.parse(json) as Record<string, unknown>;
        out.frames.push({ doc: arrow[1]!.includes('C') ? [watch] : [frames], frame });
        continue;
      }
      const line = lines[i]!.trim();
      if (!line.startsWith('{') || !parses(line)) continue;
      const o = JSON.parse(line) as Record<string, unknown>;
      if ('task' in o && 'seq' in o) out.events.push(o);
      else if ('type' in o) out.frames.push({ doc: docFor(String(o.type)), frame: o });
      else if ('name' in o) out.envelopes.push(o);
    }
    for (const m of text.matchAll(/`(\{"type":[^`]*\})`/g)) {
      if (!parses(m[1]!)) continue;
      const frame = JSON.parse(m[1]!) as Record<string, unknown>;
      out.frames.push({ doc: docFor(String(frame.type)), frame });
    }
    return out;
  }

  function parses(json: string): boolean {
    try {
      JSON.parse(json);
      return true;
    } catch {
      return false;
    }
  }

  test('the samples of docs/protocol.md are valid, for the published schema and for decodeFrame', () => {
    const s = samples();
    // The extraction must keep finding them: both sessions of section 7 and the watch session.
    expect(s.frames.length).toBeGreaterThanOrEqual(25);
    expect(s.frames.filter((f) => f.doc.includes(watch)).length).toBeGreaterThanOrEqual(6);
    expect(s.events.length).toBeGreaterThanOrEqual(6);
    expect(s.envelopes.length).toBeGreaterThanOrEqual(1);
    for (const { doc, frame } of s.frames) {
      expect(doc.length).toBeGreaterThan(0);
      for (const v of doc) expect(valid(v, frame)).toEqual({ sample: frame, errors: null });
      expect({ frame, ok: decodeFrame(JSON.stringify(frame)).ok }).toEqual({ frame, ok: true });
    }
    for (const e of s.events) expect(valid(taskEvent, e)).toEqual({ sample: e, errors: null });
    for (const e of s.envelopes) {
      expect(valid(envelope, e)).toEqual({ sample: e, errors: null });
      expect(validateEnvelope(e).ok).toBe(true);
    }
  });

  const event = { task: 't1', name: 'steps', attempt: 1, seq: 2, ts: 1795903737372, type: 'progress', done: 1, total: 2, message: 'step 1' };
  const task = { id: 't1', name: 'echo', config: { a: 1 }, epoch: 1, assignment: 'as-1', attempt: 1, state_optional: false };
  const goodFrames: Array<Record<string, unknown>> = [
    { type: 'ping', ts: 1.5, running: 3 },
    { type: 'assign', task: { ...task, config: null } },
    { type: 'draining' },
    { type: 'revoke', id: 't1', epoch: 2, reason: 'taken-over' },
    { type: 'register', prefix: 'p:', tasks: [], concurrency: 4, running: 0, watch_host: '::1', watch_port: 0, extra: 'ignored' },
    {
      type: 'batch',
      frames: [
        { type: 'done', id: 't1', epoch: 1, assignment: 'as-1', state: 'TAKEN_OVER', running: 0 },
        { type: 'pong', ts: 1 },
      ],
    },
    { type: 'watch', sub: 's', task: 't1', since: { attempt: 1, seq: 8 } },
    { type: 'watch', sub: 's', all: true },
    { type: 'event', sub: 's', event },
    { type: 'watch_end', sub: 's', reason: 'not-here' },
    {
      type: 'batch',
      frames: [
        { type: 'event', sub: 's', event },
        { type: 'watch_end', sub: 's', reason: 'ended' },
      ],
    },
  ];
  const badFrames: Array<Record<string, unknown>> = [
    { type: 'pong' },
    { type: 'ping', ts: 1, running: -1 },
    { type: 'ping', ts: 1, running: 1.5 },
    { type: 'hello', v: 1, role: 'watcher', id: 'd', nonce: 'n' },
    { type: 'welcome', id: 'x'.repeat(4097), mac: 'm' },
    { type: 'register', prefix: 'p', tasks: ['x'.repeat(257)], concurrency: 1, running: 0, watch_host: 'h', watch_port: 1 },
    { type: 'assign', task: { ...task, epoch: '1' } },
    { type: 'assign', task: { id: 't1', name: 'echo', epoch: 1, assignment: 'a', attempt: 1, state_optional: false } },
    { type: 'done', id: 't', epoch: 1, assignment: 'a', state: 'DONE', running: 0 },
    { type: 'revoke', id: 't', epoch: 1, reason: 'because' },
    { type: 'batch', frames: [] },
    { type: 'batch', frames: Array.from({ length: 1001 }, () => ({ type: 'pong', ts: 1 })) },
    { type: 'batch', frames: [{ type: 'pong', ts: 1 }, { type: 'pong' }] },
    { type: 'batch', frames: [{ type: 'batch', frames: [{ type: 'pong', ts: 1 }] }] },
    { type: 'watch', sub: 's', all: false },
    { type: 'watch', sub: 's', task: 't', since: { attempt: 1 } },
    { type: 'event', sub: 's', event: { ...event, seq: -1 } },
    { type: 'event', sub: 's', event: { ...event, type: 'weird' } },
    { type: 'watch_end', sub: 's', reason: 'bored' },
    { type: 'frobnicate' },
  ];

  test.each(goodFrames.map((f) => [String(f.type), f] as const))('accepted by both: %s', (type, frame) => {
    // A batch belongs to the connection(s) that carry every frame in it.
    const docs =
      type === 'batch' ? [frames, watch].filter((v) => (frame.frames as Array<{ type: string }>).every((f) => docFor(f.type).includes(v))) : docFor(type);
    expect(docs.length).toBeGreaterThan(0);
    for (const v of docs) expect(valid(v, frame)).toEqual({ sample: frame, errors: null });
    expect(decodeFrame(JSON.stringify(frame)).ok).toBe(true);
  });

  test.each(badFrames.map((f) => [JSON.stringify(f).slice(0, 80), f] as const))('refused by both: %s', (_label, frame) => {
    expect(frames(frame)).toBe(false);
    expect(watch(frame)).toBe(false);
    expect(decodeFrame(JSON.stringify(frame)).ok).toBe(false);
  });

  test('envelopes: accepted and refused alike', () => {
    const good = [
      { name: 'echo' },
      {
        id: '3b2f1c1e-9f0a-4c55-a1b2-0123456789ab',
        name: 'my_task-2',
        config: { deep: { list: [1] } },
        max_attempts: 1,
        max_stalls: 9,
        priority: -1000,
        state_optional: true,
        clean_end: true,
      },
      { name: 'n'.repeat(128), unknown: 'ignored' },
    ];
    const bad: unknown[] = [
      [],
      null,
      'echo',
      { config: {} },
      { name: '' },
      { name: 'a b' },
      { name: 'n'.repeat(129) },
      { name: 7 },
      { name: 'e', id: 'a/b' },
      { name: 'e', config: [1] },
      { name: 'e', config: null },
      { name: 'e', max_attempts: 0 },
      { name: 'e', max_stalls: 2.5 },
      { name: 'e', priority: 1001 },
      { name: 'e', state_optional: 'yes' },
      { name: 'e', clean_end: 1 },
    ];
    for (const e of good) {
      expect(valid(envelope, e)).toEqual({ sample: e, errors: null });
      expect(validateEnvelope(e).ok).toBe(true);
    }
    for (const e of bad) {
      expect({ e, schema: envelope(e) }).toEqual({ e, schema: false });
      expect({ e, reference: validateEnvelope(e).ok }).toEqual({ e, reference: false });
    }
  });
});
