/**
 * The Redis queue's scripts. Kept here rather than in packages/common/lua/ because that folder is
 * the task data model's; each script keeps the header layout of those files, and gets the same
 * prelude, so the priority score has one home (`ready_score`).
 *
 * Every script is idempotent under ioredis's re-send of unanswered commands: the caller passes a
 * fresh operation key, and a script that finds its operation key already set answers what the
 * first run did instead of doing it again. Every key is passed in KEYS.
 */

import { withPrelude } from '../scripts';

export interface QueueScript {
  readonly name: string;
  readonly keys: number;
  readonly lua: string;
}

export const PUSH_LIST: QueueScript = {
  name: 'queue-push-list-2',
  keys: 2,
  lua: withPrelude(`--[[
  LPUSH an item onto a list queue, once per operation.
  KEYS[1] the list   KEYS[2] this push's operation key
  ARGV[1] the item   ARGV[2] how long the operation key is kept (ms)
  Returns 1 if pushed by this call, 0 if a previous run of the same operation pushed it.
]]
if not rcall('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return 0 end
rcall('LPUSH', KEYS[1], ARGV[1])
return 1
`),
};

export const POP_LIST: QueueScript = {
  name: 'queue-pop-list-2',
  keys: 2,
  lua: withPrelude(`--[[
  RPOP the oldest item of a list queue, once per operation.
  KEYS[1] the list   KEYS[2] this pop's operation key
  ARGV[1] how long the popped item is kept under the operation key (ms)
  Returns the item, or false when the list is empty. A re-run returns the item the first run took.
]]
local done = rcall('GET', KEYS[2])
if done then return done end
local v = rcall('RPOP', KEYS[1])
if v then rcall('SET', KEYS[2], v, 'PX', ARGV[1]) end
return v
`),
};

export const PUSH_SCORED: QueueScript = {
  name: 'queue-push-scored-3',
  keys: 3,
  lua: withPrelude(`--[[
  ZADD an item to a scored queue, once per operation.
  KEYS[1] the sorted set   KEYS[2] the counter (priority) or the clock (random, weighted)
  KEYS[3] this push's operation key
  ARGV[1] the member (a unique id, a newline, the item)   ARGV[2] 'priority' or 'draw'
  ARGV[3] the priority, or the exponential draw           ARGV[4] operation key lifetime (ms)
  Priority: the prelude's ready_score (higher priority first, then arrival order). Draw: score =
  clock + draw.
  Returns 1 if added by this call, 0 for a re-run.
]]
if not rcall('SET', KEYS[3], '1', 'NX', 'PX', ARGV[4]) then return 0 end
local score
if ARGV[2] == 'priority' then
  score = ready_score(ARGV[3], rcall('INCR', KEYS[2]), 'priority')
else
  score = (tonumber(rcall('GET', KEYS[2])) or 0) + tonumber(ARGV[3])
end
rcall('ZADD', KEYS[1], score, ARGV[1])
return 1
`),
};

export const POP_SCORED: QueueScript = {
  name: 'queue-pop-scored-3',
  keys: 3,
  lua: withPrelude(`--[[
  ZPOPMIN the next item of a scored queue, once per operation.
  KEYS[1] the sorted set   KEYS[2] the clock (moved to the popped score when ARGV[2] is 'draw')
  KEYS[3] this pop's operation key
  ARGV[1] how long the popped member is kept under the operation key (ms)   ARGV[2] 'priority' or 'draw'
  Returns the member, or false when empty. A re-run returns the member the first run took.
]]
local done = rcall('GET', KEYS[3])
if done then return done end
local r = rcall('ZPOPMIN', KEYS[1])
if #r == 0 then return false end
-- Exact text of the score, so the clock is the popped key itself, not a rounded copy.
if ARGV[2] == 'draw' then rcall('SET', KEYS[2], r[2]) end
rcall('SET', KEYS[3], r[1], 'PX', ARGV[1])
return r[1]
`),
};
