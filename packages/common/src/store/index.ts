export { MemoryStore } from './memory-store';
export { FsStore, type FsStoreOptions } from './fs-store';
export { RedisStore, type RedisStoreOptions } from './redis-store';
export { DEFAULT_LEASE_MS, JOB_ID_RE, canonicalJson } from './lease';
export {
  StoreError,
  LeaseLostError,
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
} from './types';
