--[[
  Put an attempt back in the queue (epoch + 1), atomically with the check that it still is the
  attempt the caller saw, so two distributors never requeue the same attempt twice. A RUNNING
  attempt taken from its worker is written to that worker's inbox, so it aborts the run within
  one heartbeat if it is still alive.

  Modes: 'down'    its worker was found down: requeue a RUNNING or STOPPED attempt; a RUNNING one is a stall
         'stale'   requeue only if it is STOPPED, or RUNNING and stale (is_stale); RUNNING is a stall
         'stopped' requeue only a STOPPED attempt
         'rejected' the worker refused the assignment (or never got it): requeue after a short
                   delay (ARGV[11]) so a refusal cannot spin, and the start does not count

  KEYS[1] task hash, KEYS[2] ready:<name>, KEYS[3] delayed, KEYS[4] worker-tasks:<worker>, KEYS[5] worker hash,
  KEYS[6] enqueue sequence counter, KEYS[7] stopped, KEYS[8] inbox:<worker>, KEYS[9] ended,
  KEYS[10] completed
  ARGV[1] id, [2] epoch, [3] assignment, [4] mode, [5] now, [6] stale-before ms, [7] backoff ms,
       [8] backoff max ms, [9] channel, [10] the worker the caller believes runs it,
       [11] delay ms before a rejected task is runnable again, [12] ready order
  Returns 1 requeued, 2 CANCELLED (a cancel was pending), 3 FAILED (max_stalls reached), 0 not applicable.
]]
local id, mode, now = ARGV[1], ARGV[4], tonumber(ARGV[5])
local t = rcall('HMGET', KEYS[1], 'epoch', 'assignment', 'state', 'cancel', 'stop_reason', 'failures',
  'stalls', 'max_stalls', 'updated_at', 'priority', 'name', 'worker')
local state = t[3]
if state ~= 'STOPPED' then rcall('SREM', KEYS[7], id) end
if not state then
  rcall('SREM', KEYS[4], id)
  return 0
end
-- An id in this worker's index whose record is not this worker's attempt any more is dropped from it.
if t[12] ~= ARGV[10] or (state ~= 'RUNNING' and state ~= 'STOPPED') then
  rcall('SREM', KEYS[4], id)
  return 0
end
if t[1] ~= ARGV[2] or (t[2] or '') ~= ARGV[3] then return 0 end
if mode == 'stopped' and state ~= 'STOPPED' then return 0 end
if mode == 'stale' and state == 'RUNNING' then
  -- A RedisStore claim holds its attempt under a worker hash of its own with the lease's length.
  local w = rcall('HMGET', KEYS[5], 'updated_at', 'lease_ms')
  local before = w[2] and (now - tonumber(w[2])) or tonumber(ARGV[6])
  if not is_stale(t[9], w[1], before) then return 0 end
end
rcall('SREM', KEYS[4], id)
if state == 'STOPPED' then rcall('SREM', KEYS[7], id) end
if state == 'RUNNING' and mode ~= 'rejected' then tell(KEYS[8], 'lost ' .. id .. ' ' .. t[1]) end
if t[4] == '1' then
  rcall('HSET', KEYS[1], 'state', 'CANCELLED', 'error', 'cancelled by a client', 'assignment', '',
    'ended_at', now, 'updated_at', now)
  terminal(KEYS[9], KEYS[10], id, t[11], 'CANCELLED', now)
  return 2
end
if (mode == 'down' or mode == 'stale') and state == 'RUNNING' then
  local stalls = rcall('HINCRBY', KEYS[1], 'stalls', 1)
  if stalls >= tonumber(t[8]) then
    rcall('HSET', KEYS[1], 'state', 'FAILED', 'assignment', '', 'ended_at', now, 'updated_at', now,
      'error', 'stalled ' .. stalls .. ' times (max_stalls ' .. t[8] .. '): its worker was lost during every run')
    terminal(KEYS[9], KEYS[10], id, t[11], 'FAILED', now)
    return 3
  end
end
local delay = 0
if mode == 'rejected' or (state == 'STOPPED' and t[5] == 'unassigned') then
  rcall('HINCRBY', KEYS[1], 'attempts', -1)
  delay = tonumber(ARGV[11])
elseif state == 'STOPPED' and t[5] == 'error' then
  delay = math.min(tonumber(ARGV[7]) * 2 ^ (tonumber(t[6]) - 1), tonumber(ARGV[8]))
end
rcall('HINCRBY', KEYS[1], 'epoch', 1)
rcall('HSET', KEYS[1], 'state', 'QUEUED', 'worker', '', 'assignment', '', 'stop_reason', '', 'updated_at', now)
if delay > 0 then
  rcall('ZADD', KEYS[3], now + delay, id)
else
  rcall('ZADD', KEYS[2], ready_score(t[10], rcall('INCR', KEYS[6]), ARGV[12]), id)
  rcall('PUBLISH', ARGV[9], 'ready')
end
return 1
