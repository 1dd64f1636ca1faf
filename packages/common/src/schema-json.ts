/**
 * The JSON Schema documents published in docs/schema, for producers, workers and watchers written
 * in other languages. They are built from the same TypeBox definitions the reference
 * implementation checks with (protocol.ts, envelope.ts), so they cannot say something else;
 * scripts/gen-schema.js writes them and test/schema.test.ts fails when docs/schema is stale.
 *
 * Each document stands alone (no reference to another file), in JSON Schema 2020-12: one `$defs`
 * entry per frame, so a new frame is one more name in CONNECTION_FRAMES.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { EnvelopeSchema } from './envelope';
import { AssignedTaskSchema, batchOf, FRAME_SCHEMAS, PROTOCOL_VERSION, TaskEventSchema, WatchSinceSchema, type MessageType } from './protocol';

const DIALECT = 'https://json-schema.org/draft/2020-12/schema';
const GENERATED = 'Generated from packages/common/src by scripts/gen-schema.js (pnpm run schema). Do not edit.';

type SingleType = Exclude<MessageType, 'batch'>;

/** The frames each kind of connection carries besides `batch` (docs/protocol.md, sections 4 and "Watcher protocol"). */
export const CONNECTION_FRAMES: Readonly<Record<'frames' | 'watch', readonly SingleType[]>> = {
  frames: ['hello', 'auth', 'welcome', 'register', 'ping', 'pong', 'assign', 'reject', 'done', 'release', 'redis', 'draining', 'revoke', 'error'],
  watch: ['hello', 'auth', 'welcome', 'ping', 'pong', 'error', 'watch', 'unwatch', 'event', 'events', 'watch_end'],
};

/**
 * A schema as plain JSON: TypeBox's symbol keys dropped, and every schema object named in `refs`
 * (other than `self`) replaced by a `$ref` to its `$defs` entry, so shared parts appear once.
 */
function plain(node: unknown, refs: ReadonlyMap<object, string>, self: object): unknown {
  if (Array.isArray(node)) return node.map((n: unknown) => plain(n, refs, self));
  if (typeof node !== 'object' || node === null) return node;
  const name = refs.get(node);
  if (name !== undefined && node !== self) return { $ref: `#/$defs/${name}` };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = plain(v, refs, self);
  return out;
}

function withDefs(head: Record<string, unknown>, root: Record<string, unknown>, defs: Record<string, TSchema>): Record<string, unknown> {
  const refs = new Map<object, string>(Object.entries(defs).map(([name, schema]) => [schema, name]));
  return {
    ...head,
    ...root,
    $defs: Object.fromEntries(Object.entries(defs).map(([name, schema]) => [name, plain(schema, refs, schema)])),
  };
}

function framesDocument(kind: 'frames' | 'watch', title: string, description: string, shared: Record<string, TSchema>): Record<string, unknown> {
  const types = CONNECTION_FRAMES[kind];
  const frame = Type.Union(
    types.map((t) => FRAME_SCHEMAS[t]),
    { description: 'Any frame of this connection but batch.' },
  );
  const defs: Record<string, TSchema> = { ...Object.fromEntries(types.map((t) => [t, FRAME_SCHEMAS[t]])), batch: batchOf(frame), frame, ...shared };
  const head = { $schema: DIALECT, $id: `urn:taskmesh:protocol:${PROTOCOL_VERSION}:${kind}`, $comment: GENERATED, title, description };
  return withDefs(head, { anyOf: [{ $ref: '#/$defs/frame' }, { $ref: '#/$defs/batch' }] }, defs);
}

/** The published documents, by file name in docs/schema. */
export function schemaDocuments(): Record<string, Record<string, unknown>> {
  const common =
    'One JSON text frame (WebSocket text message). Unknown fields are ignored, so a newer peer may add some. Strings are at most 4096 characters ' +
    '(counted in UTF-16 code units by the reference implementation). See docs/protocol.md.';
  return {
    'envelope.schema.json': {
      $schema: DIALECT,
      $id: 'urn:taskmesh:envelope',
      $comment: GENERATED,
      title: 'taskmesh task envelope',
      ...(plain(EnvelopeSchema, new Map(), EnvelopeSchema) as Record<string, unknown>),
    },
    'frames.schema.json': framesDocument('frames', `taskmesh distributor <-> worker frames, protocol version ${PROTOCOL_VERSION}`, common, {
      'assigned-task': AssignedTaskSchema,
    }),
    'watch.schema.json': framesDocument('watch', `taskmesh watcher <-> worker frames, protocol version ${PROTOCOL_VERSION}`, common, {
      since: WatchSinceSchema,
      'task-event': TaskEventSchema,
    }),
  };
}

/** The documents as the text of their files: two-space JSON and a final newline. */
export function schemaFiles(): Record<string, string> {
  return Object.fromEntries(Object.entries(schemaDocuments()).map(([file, doc]) => [file, `${JSON.stringify(doc, null, 2)}\n`]));
}
