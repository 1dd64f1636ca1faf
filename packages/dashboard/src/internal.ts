/**
 * The dashboard's parts, for tests: the Redis snapshot, the live-row folding and the request
 * checks. Not a stable API.
 */
export { SnapshotReader, type Snapshot, type WorkerRow, type DistributorRow, type AssignedRow, type FailureRow, type DeadRow } from './snapshot';
export { LiveTasks, ENDED_KEEP_MS, SILENT_MS, type LiveTask } from './live';
export { authorize, hostAllowed, sameOrigin, type AuthResult } from './auth';
