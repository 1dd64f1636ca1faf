--[[
  Record how an attempt ended. Fenced on (epoch, assignment): a worker that was cut off and replaced
  is refused, so completion is recorded exactly once per task. A re-sent call whose first run
  already landed is recognised (same assignment, no longer RUNNING) and answered 2.

  KEYS[1] task hash, KEYS[2] worker-tasks:<worker>
  ARGV[1] epoch, [2] assignment, [3] outcome END|ERROR|CANCELLED|STOPPED, [4] result json or error
       message, [5] now, [6] stop reason (for STOPPED), [7] task id
  Returns {code, state}: code 1 recorded, 2 not RUNNING any more under this fence (a re-sent call
  whose first run landed, or a distributor recorded STOPPED for it first), 3 recorded as FAILED
  (attempts used up), 4 recorded as STOPPED for a retry, 0 refused; state is the record's state
  after the call.
]]
local rcall = redis.call
local cur = rcall('HMGET', KEYS[1], 'epoch', 'assignment', 'state', 'failures', 'max_attempts')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return {0, cur[3] or ''} end
if cur[3] ~= 'RUNNING' then return {2, cur[3]} end
local outcome, now = ARGV[3], ARGV[5]
rcall('SREM', KEYS[2], ARGV[7])
if outcome == 'END' then
  rcall('HSET', KEYS[1], 'state', 'END', 'result', ARGV[4], 'error', '', 'ended_at', now, 'updated_at', now)
  rcall('HINCRBY', KEYS[1], 'completions', 1)
  return {1, 'END'}
elseif outcome == 'CANCELLED' then
  rcall('HSET', KEYS[1], 'state', 'CANCELLED', 'error', ARGV[4], 'ended_at', now, 'updated_at', now)
  return {1, 'CANCELLED'}
elseif outcome == 'ERROR' then
  local failures = rcall('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(cur[5]) then
    rcall('HSET', KEYS[1], 'state', 'FAILED', 'error', ARGV[4], 'ended_at', now, 'updated_at', now)
    return {3, 'FAILED'}
  end
  rcall('HSET', KEYS[1], 'state', 'STOPPED', 'stop_reason', 'error', 'error', ARGV[4], 'updated_at', now)
  return {4, 'STOPPED'}
end
rcall('HSET', KEYS[1], 'state', 'STOPPED', 'stop_reason', ARGV[6], 'updated_at', now)
return {1, 'STOPPED'}
