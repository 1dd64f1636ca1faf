export { MemoryQueue } from './memory-queue';
export { RedisQueue, type RedisQueueOptions } from './redis-queue';
export { QUEUE_KINDS, QueueError, type Queue, type QueueItem, type QueueKind, type QueueOptions } from './types';
