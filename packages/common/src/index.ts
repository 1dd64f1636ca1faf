/**
 * @taskmesh/common: what every taskmesh process and client shares.
 *
 *   import { TaskClient, loadConfig } from '@taskmesh/common';
 *   const client = new TaskClient(loadConfig('cli', 'config/watcher.json'));
 *   const id = await client.submit('resize', { width: 640 });
 *   const record = await client.wait(id);
 *   await client.close();
 */
export { TaskClient, type SubmitOptions, type WaitOptions } from './client';
export type { OnCompleteOptions, Subscription } from './completions';
export {
  loadConfig,
  configPathFromArgs,
  type Role,
  type ConfigFor,
  type BaseConfig,
  type DistributorConfig,
  type WorkerConfig,
  type WatcherConfig,
  type CliConfig,
  type DashboardConfig,
  type RedisConfig,
  type TlsMaterial,
  type HealthConfig,
  type MetricsConfig,
} from './config';
// Embedders set the process log level without a config (loadConfig applies `log.level` itself).
export { setLogLevel, type LogLevel } from './log';
export {
  TaskmeshError,
  ConfigError,
  UnknownTaskError,
  UsageError,
  TaskAbortError,
  HandshakeError,
  ScriptError,
  HANDSHAKE_ERROR_CODES,
  type ErrorCode,
  type HandshakeErrorCode,
  type ScriptErrorCode,
} from './errors';
export { TASK_STATES, TERMINAL_STATES, isTerminal, parseRecord, type TaskRecord, type TaskState } from './record';
export { TASK_NAME_RE, ENVELOPE_DEFAULTS, type EnvelopeInput } from './envelope';
export {
  CloseCode,
  PROTOCOL_VERSION,
  DONE_STATES,
  decodeFrame,
  encodeFrame,
  type DoneState,
  type Message,
  type MessageOf,
  type MessageType,
  type AssignedTask,
  type TaskEvent,
  type TaskEventType,
  type WatchSince,
  type WatchEndReason,
} from './protocol';
export { generateDevCerts, generateCa, generateLeaf, DEFAULT_CERT_NAMES } from './certs';
export {
  MemoryStore,
  FsStore,
  RedisStore,
  StoreError,
  LeaseLostError,
  type FsStoreOptions,
  type RedisStoreOptions,
  type Store,
  type StoreErrorCode,
  type Job,
  type JobState,
  type JsonValue,
  type Lease,
  type LeaseOptions,
  type Claim,
  type Notification,
  type CreateOptions,
  type FulfillResult,
} from './store';
export {
  MemoryQueue,
  RedisQueue,
  QueueError,
  QUEUE_KINDS,
  type Queue,
  type QueueItem,
  type QueueKind,
  type QueueOptions,
  type RedisQueueOptions,
} from './queue';
export { compose, ComposeStepError, type ComposeContext, type ComposeStep, type ComposeOptions } from './compose';
