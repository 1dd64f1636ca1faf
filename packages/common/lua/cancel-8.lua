--[[
  Record a cancellation durably. A QUEUED or STOPPED task becomes CANCELLED at once; a RUNNING one
  is flagged and its worker is told through its inbox (read by its next heartbeat) and pub/sub (a
  distributor that hears the worker forwards it at once); requeue turns a flagged task into
  CANCELLED instead of running it again.

  KEYS[1] task hash, KEYS[2] ready:<name>, KEYS[3] delayed, KEYS[4] worker-tasks:<worker>,
  KEYS[5] inbox:<worker>, KEYS[6] stopped, KEYS[7] ended, KEYS[8] completed
  ARGV[1] id, [2] now, [3] channel, [4] the worker the caller read from the record
  Returns the state after the call ('CANCELLED', 'RUNNING' meaning pending, or a terminal state),
  'RETRY' when the task moved to another worker since the caller read it, or '' for an unknown task.
]]
local t = rcall('HMGET', KEYS[1], 'state', 'worker', 'epoch', 'name')
local state = t[1]
if not state then return '' end
if TERMINAL[state] then return state end
if state == 'RUNNING' and t[2] ~= ARGV[4] then return 'RETRY' end
rcall('HSET', KEYS[1], 'cancel', '1')
if state == 'RUNNING' then
  tell(KEYS[5], 'cancel ' .. ARGV[1] .. ' ' .. t[3])
  rcall('PUBLISH', ARGV[3], 'cancel ' .. ARGV[1])
  return 'RUNNING'
end
rcall('ZREM', KEYS[2], ARGV[1])
rcall('ZREM', KEYS[3], ARGV[1])
rcall('SREM', KEYS[4], ARGV[1])
rcall('SREM', KEYS[6], ARGV[1])
rcall('HINCRBY', KEYS[1], 'epoch', 1)
rcall('HSET', KEYS[1], 'state', 'CANCELLED', 'error', 'cancelled by a client', 'assignment', '',
  'ended_at', ARGV[2], 'updated_at', ARGV[2])
terminal(KEYS[7], KEYS[8], ARGV[1], t[4], 'CANCELLED', ARGV[2])
return 'CANCELLED'
