--[[
  Record one envelope taken from new-task (now in this distributor's processing list) and make the
  task runnable. Removing it from the processing list happens in the same script, so a crash at any
  point either leaves the envelope to be recovered or has fully recorded it; a re-sent call finds
  nothing to remove and does nothing.

  KEYS[1] processing list, KEYS[2] tasks set, KEYS[3] task hash, KEYS[4] ready:<name>, KEYS[5] dead list,
  KEYS[6] enqueue sequence counter
  ARGV[1] raw envelope, [2] id, [3] name, [4] config json, [5] max_attempts, [6] max_stalls,
       [7] priority, [8] state_optional, [9] clean_end, [10] now, [11] distributor id, [12] channel
  Returns {1, id} queued, {0, ''} already handled, {-1, reason} dead-lettered.
]]
local rcall = redis.call
if rcall('LREM', KEYS[1], 1, ARGV[1]) == 0 then return {0, ''} end
local cur = rcall('HMGET', KEYS[3], 'state', 'name', 'attempts')
if cur[1] then
  local reason = nil
  if cur[1] == 'CANCELLED' and cur[2] == ARGV[3] and tonumber(cur[3]) == 0 then
    -- Submitted, then cancelled before any distributor took its envelope: nothing left to do.
    return {0, ''}
  end
  if cur[2] ~= ARGV[3] then
    reason = 'task id ' .. ARGV[2] .. ' already exists with name ' .. tostring(cur[2])
  elseif cur[1] ~= 'QUEUED' then
    reason = 'task id ' .. ARGV[2] .. ' already exists in state ' .. cur[1]
  end
  if reason then
    rcall('LPUSH', KEYS[5], cjson.encode({reason = reason, raw = ARGV[1], at = tonumber(ARGV[10]), distributor = ARGV[11]}))
    return {-1, reason}
  end
else
  rcall('HSET', KEYS[3], 'id', ARGV[2], 'name', ARGV[3], 'config', ARGV[4], 'state', 'QUEUED',
    'attempts', 0, 'max_attempts', ARGV[5], 'stalls', 0, 'max_stalls', ARGV[6], 'failures', 0,
    'epoch', 0, 'assignment', '', 'worker', '', 'distributor', '', 'priority', ARGV[7],
    'state_optional', ARGV[8], 'clean_end', ARGV[9], 'cancel', '0', 'completions', 0,
    'created_at', ARGV[10], 'updated_at', ARGV[10])
  rcall('SADD', KEYS[2], ARGV[2])
end
-- Higher priority first, then first come first served (priority is bounded to +-1000, so
-- scores stay exact integers below 2^53).
rcall('ZADD', KEYS[4], -tonumber(ARGV[7]) * 1e12 + rcall('INCR', KEYS[6]), ARGV[2])
rcall('PUBLISH', ARGV[12], 'ready ' .. ARGV[3])
return {1, ARGV[2]}
