--[[
  Shared by every script (prepended when the scripts are loaded): the one home in Lua for the
  terminal states, the ready-queue score, the stale rule and the way a worker is told something.
]]
local rcall = redis.call
local TERMINAL = {END = true, FAILED = true, CANCELLED = true}

-- The ready-queue score. Order 'priority' (the default): higher priority first, then first come
-- first served; order 'fifo': arrival only. Priority is bounded to +-1000 and the sequence stays
-- below 1e12, so scores stay exact integers below 2^53. (Random and weighted kinds sample the
-- queue instead of taking its head, so they keep the priority score.)
local function ready_score(priority, seq, order)
  if order == 'fifo' then return seq end
  return -tonumber(priority or 0) * 1e12 + seq
end

-- A RUNNING attempt is stale when its worker's hash is gone, or when both its own updated_at and
-- its worker's heartbeat are older than `before` (SPEC section 4).
local function is_stale(task_updated_at, worker_beat, before)
  if not worker_beat then return true end
  return tonumber(task_updated_at or 0) < before and tonumber(worker_beat) < before
end

-- A new QUEUED record (SPEC section 2's fields), in the tasks set: the one place a record is born.
-- Extra field/value pairs of the caller's (a submit token, a Store request, the start of its first
-- attempt) go in the same write; HSET sets pairs in order, so an extra pair overrides a default.
local function new_record(key, tasks, id, name, config, max_attempts, max_stalls, priority, state_optional, clean_end, now, ...)
  rcall('HSET', key, 'id', id, 'name', name, 'config', config, 'state', 'QUEUED',
    'attempts', 0, 'max_attempts', max_attempts, 'stalls', 0, 'max_stalls', max_stalls, 'epoch', 0,
    'worker', '', 'distributor', '', 'priority', priority, 'state_optional', state_optional,
    'clean_end', clean_end, 'created_at', now, 'updated_at', now, ...)
  rcall('SADD', tasks, id)
end

-- What starting an attempt writes to its record (the assign script, and the intake script when
-- it hands a new task straight to a worker with a free slot): the one home of an attempt's start.
-- Returned as field/value pairs, so a caller passes them to HSET or to new_record.
local function attempt_fields(epoch, attempts, worker, distributor, assignment, now)
  return 'state', 'RUNNING', 'epoch', epoch, 'attempts', attempts, 'worker', worker, 'distributor', distributor,
    'assignment', assignment, 'started_at', now, 'updated_at', now, 'stop_reason', ''
end

-- A task became terminal: the retention index (by ended_at) and the completions stream that
-- TaskClient.onComplete consumers read (Redis assigns its entry ids, so no clock is trusted).
local function terminal(ended, completed, id, name, state, now)
  rcall('ZADD', ended, now, id)
  rcall('XADD', completed, '*', 'id', id, 'name', name or '', 'state', state)
end

-- A worker's inbox: what it must act on (takeovers, cancels), read by its next heartbeat. It
-- outlives any worker that could still come back to read it.
local INBOX_TTL_MS = 3600000
local function tell(inbox, msg)
  rcall('RPUSH', inbox, msg)
  rcall('PEXPIRE', inbox, INBOX_TTL_MS)
end
