/**
 * What sibling packages and tests need but users should not build on: the Redis scripts, keys,
 * connection helpers and the channel layer. Not a stable API.
 */
export { Keys } from './keys';
export { Scripts, type Fence, type EnvelopeFields, type IntakeItem, type IntakeResult, type RequeueMode, type FinishOutcome, type FinishResult, type FinishItem, type Finished, type InboxEntry, type AssignResult, type ReadyOrder } from './scripts';
export { createRedis, closeRedis, redisOptions, type Redis } from './redis';
export { listen, connect, Channel, type MeshServer } from './channel';
export { parseEnvelope, validateEnvelope, type ParsedEnvelope } from './envelope';
export { createLogger, type Logger } from './log';
export { peerNames } from './tls';
export { runMain, exitOnConfigError } from './main';
export { Presence, HASH_TTL_INTERVALS } from './presence';
export { RedisGate } from './redis-gate';
