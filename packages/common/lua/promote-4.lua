--[[
  Move a task whose retry backoff has run out from delayed to its ready queue.

  KEYS[1] delayed, KEYS[2] task hash, KEYS[3] ready:<name>, KEYS[4] enqueue sequence counter
  ARGV[1] id, [2] now, [3] channel, [4] ready order
  Returns 1 promoted, 0 not due or not QUEUED.
]]
local due = rcall('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
rcall('ZREM', KEYS[1], ARGV[1])
local t = rcall('HMGET', KEYS[2], 'state', 'priority')
if t[1] ~= 'QUEUED' then return 0 end
rcall('ZADD', KEYS[3], ready_score(t[2], rcall('INCR', KEYS[4]), ARGV[4]), ARGV[1])
rcall('PUBLISH', ARGV[3], 'ready')
return 1
