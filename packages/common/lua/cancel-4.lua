--[[
  Record a cancellation durably. A QUEUED or STOPPED task becomes CANCELLED at once; a RUNNING one
  is flagged and its owner is told (pub/sub now, and its next heartbeat in any case); requeue turns
  a flagged task into CANCELLED instead of running it again.

  KEYS[1] task hash, KEYS[2] ready:<name>, KEYS[3] delayed, KEYS[4] worker-tasks:<worker>
  ARGV[1] id, [2] now, [3] channel
  Returns the state after the call ('CANCELLED', 'RUNNING' meaning pending, or a terminal state),
  or '' for an unknown task.
]]
local rcall = redis.call
local t = rcall('HMGET', KEYS[1], 'state')
local state = t[1]
if not state then return '' end
if state == 'END' or state == 'FAILED' or state == 'CANCELLED' then return state end
rcall('HSET', KEYS[1], 'cancel', '1')
if state == 'RUNNING' then
  rcall('PUBLISH', ARGV[3], 'cancel ' .. ARGV[1])
  return 'RUNNING'
end
rcall('ZREM', KEYS[2], ARGV[1])
rcall('ZREM', KEYS[3], ARGV[1])
rcall('SREM', KEYS[4], ARGV[1])
rcall('HINCRBY', KEYS[1], 'epoch', 1)
rcall('HSET', KEYS[1], 'state', 'CANCELLED', 'error', 'cancelled by a client', 'assignment', '',
  'ended_at', ARGV[2], 'updated_at', ARGV[2])
return 'CANCELLED'
