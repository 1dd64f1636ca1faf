/**
 * What sibling packages and tests need but users should not build on: the Redis scripts, keys,
 * connection helpers and the channel layer. Not a stable API.
 */
export { Keys } from './keys';
export {
  Scripts,
  type Fence,
  type EnvelopeFields,
  type IntakeItem,
  type IntakeResult,
  type RequeueMode,
  type FinishOutcome,
  type FinishResult,
  type FinishItem,
  type Finished,
  type InboxEntry,
  type AssignResult,
  type Assigned,
  type Handover,
  type ReadyOrder,
  SCRIPT_REPLIES,
  scriptReply,
  type ScriptName,
  type ReplyOf,
} from './scripts';
export { createRedis, closeRedis, redisOptions, queuePart, throwFirstError, type PipelineReplies, type Redis } from './redis';
export { listen, connect, Channel, type MeshServer } from './channel';
export { parseEnvelope, validateEnvelope, EnvelopeSchema, type ParsedEnvelope } from './envelope';
export { FRAME_SCHEMAS } from './protocol';
export { schemaDocuments, schemaFiles, CONNECTION_FRAMES } from './schema-json';
export {
  createLogger,
  setLogLevel,
  setLogFormat,
  logLevel,
  registerSecret,
  scrub,
  prettyLine,
  isLogLevel,
  LOG_LEVELS,
  LOG_ROLES,
  type Logger,
  type LogLevel,
  type LogFormat,
  type LogRole,
  type LogFields,
} from './log';
export { Metrics, SAMPLE_CACHE_MS, type MetricsRole, type MetricsSample, type Sampler, type RequeueCause, type RefusalReason } from './metrics';
export { peerNames } from './tls';
export { runMain, exitOnConfigError } from './main';
export { Presence, HASH_TTL_INTERVALS } from './presence';
export { RedisGate } from './redis-gate';
// Building blocks for new Store and Queue implementations (docs/architecture.md, "Writing a new implementation").
export { LeaseHandle, DEFAULT_LEASE_MS, JOB_ID_RE, canonicalJson, checkJobId, cloneJson, leaseMsOf, newToken, type LeaseBackend } from './store/lease';
export { ClaimHandle, NotificationHandle } from './store/handles';
export { priorityOf, weightOf, expDraw } from './queue/order';
export { COMMON_OPTIONS, parseCommandLine, configPath, commonOverrides, exitOnUsageError, type CommonOptions, type CommandLine, type Values } from './args';
