--[[
  Move a task whose retry backoff has run out from delayed to its ready queue.

  KEYS[1] delayed, KEYS[2] task hash, KEYS[3] ready:<name>, KEYS[4] enqueue sequence counter
  ARGV[1] id, [2] now, [3] channel
  Returns 1 promoted, 0 not due or not QUEUED.
]]
local rcall = redis.call
local due = rcall('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
rcall('ZREM', KEYS[1], ARGV[1])
local t = rcall('HMGET', KEYS[2], 'state', 'priority', 'name')
if t[1] ~= 'QUEUED' then return 0 end
rcall('ZADD', KEYS[3], -tonumber(t[2]) * 1e12 + rcall('INCR', KEYS[4]), ARGV[1])
rcall('PUBLISH', ARGV[3], 'ready ' .. t[3])
return 1
