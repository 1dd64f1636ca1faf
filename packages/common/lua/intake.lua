--[[
  Record a batch of envelopes taken from new-task (now in this distributor's processing list) and
  make the tasks runnable. Each is removed from the processing list in the same script, so a crash
  at any point either leaves an envelope to be recovered or has fully recorded it; a re-sent call
  finds nothing to remove and does nothing (a hand-over whose reply was lost leaves a RUNNING
  attempt no frame announced: its worker's heartbeat finds it in its task index and gives it back,
  as for a lost assign frame).

  Hand-over: when the distributor has a free worker slot for every task of the batch (ARGV[5] is
  '1'), a task whose ready queue is empty starts its first attempt here, on the worker named for
  it, instead of waiting in the ready queue for a dispatch read and an assign call: two round
  trips fewer before it starts. A task whose queue holds older tasks is queued behind them as
  usual, so the queue's order is kept.

  KEYS[1] processing list, KEYS[2] tasks set, KEYS[3] dead list, KEYS[4] enqueue sequence counter,
       KEYS[5] assigned (workers with tasks), then per envelope: task hash, ready:<name>, and with
       hand-over worker-tasks:<worker>
  ARGV[1] now, [2] distributor id, [3] channel, [4] ready order, [5] hand-over '1' or '0', then
       per envelope: raw, id, name, config json, max_attempts, max_stalls, priority,
       state_optional, clean_end, and with hand-over worker id, assignment id
  Returns one entry per envelope: 1 queued, 0 already handled, the reason it was dead-lettered,
  or, handed over, {epoch, attempts, config json, state_optional, clean_end, queued_at} as the
  assign script returns it.
]]
local now, handover = ARGV[1], ARGV[5] == '1'
local kw, aw = handover and 3 or 2, handover and 11 or 9
local n = (#KEYS - 5) / kw
local seq = rcall('INCRBY', KEYS[4], n) - n
-- started: the workers handed a task (a set), each added once to the assigned index.
local out, queued, started = {}, false, {}
for i = 1, n do
  local k, a = 5 + (i - 1) * kw, 5 + (i - 1) * aw
  local task, ready = KEYS[k + 1], KEYS[k + 2]
  local raw, id, name, config = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  out[i] = 0
  if rcall('LREM', KEYS[1], -1, raw) > 0 then
    local cur = rcall('HMGET', task, 'state', 'name', 'attempts', 'epoch')
    local reason, fresh = nil, not cur[1]
    if not fresh then
      if cur[2] ~= name then
        reason = 'task id ' .. id .. ' already exists with name ' .. tostring(cur[2])
      elseif cur[1] == 'CANCELLED' and tonumber(cur[3]) == 0 then
        -- Submitted, then cancelled before any distributor took its envelope: nothing left to do.
        cur = nil
      elseif cur[1] ~= 'QUEUED' then
        reason = 'task id ' .. id .. ' already exists in state ' .. cur[1]
      end
    end
    if reason then
      rcall('LPUSH', KEYS[3], cjson.encode({reason = reason, raw = raw, at = tonumber(now), distributor = ARGV[2]}))
      out[i] = reason
    elseif cur then
      local handing = handover and rcall('ZCARD', ready) == 0
      local worker, asg = ARGV[a + 10], ARGV[a + 11]
      if fresh then
        -- A new record is born RUNNING when handed over: one write (attempt_fields override).
        local start = handing and {attempt_fields(1, 1, worker, ARGV[2], asg, now)} or {}
        new_record(task, KEYS[2], id, name, config, ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], now, unpack(start))
      end
      if not handing then
        rcall('ZADD', ready, ready_score(ARGV[a + 7], seq + i, ARGV[4]), id)
        out[i] = 1
        queued = true
      else
        if fresh then
          out[i] = {1, 1, config, ARGV[a + 8], ARGV[a + 9], now}
        else
          -- Recorded by a client's submit: its own fields (and a re-sent envelope's epoch) count.
          local own = rcall('HMGET', task, 'config', 'state_optional', 'clean_end', 'updated_at')
          local epoch, attempts = tonumber(cur[4] or 0) + 1, tonumber(cur[3] or 0) + 1
          rcall('HSET', task, attempt_fields(epoch, attempts, worker, ARGV[2], asg, now))
          out[i] = {epoch, attempts, own[1], own[2], own[3], own[4]}
        end
        rcall('SADD', KEYS[k + 3], id)
        started[worker] = true
      end
    end
  end
end
for w in pairs(started) do rcall('SADD', KEYS[5], w) end
if queued then rcall('PUBLISH', ARGV[3], 'ready') end
return out
