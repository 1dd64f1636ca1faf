--[[
  Record a batch of envelopes taken from new-task (now in this distributor's processing list) and
  make the tasks runnable. Each is removed from the processing list in the same script, so a crash
  at any point either leaves an envelope to be recovered or has fully recorded it; a re-sent call
  finds nothing to remove and does nothing.

  KEYS[1] processing list, KEYS[2] tasks set, KEYS[3] dead list, KEYS[4] enqueue sequence counter,
       then per envelope: task hash, ready:<name>
  ARGV[1] now, [2] distributor id, [3] channel, [4] ready order, then 9 per envelope: raw, id, name, config json,
       max_attempts, max_stalls, priority, state_optional, clean_end
  Returns one entry per envelope: 1 queued, 0 already handled, or the reason it was dead-lettered.
]]
local now, n = ARGV[1], (#KEYS - 4) / 2
local seq = rcall('INCRBY', KEYS[4], n) - n
local out, queued = {}, false
for i = 1, n do
  local task, ready = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local a = 4 + (i - 1) * 9
  local raw, id, name = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  out[i] = 0
  if rcall('LREM', KEYS[1], -1, raw) > 0 then
    local cur = rcall('HMGET', task, 'state', 'name', 'attempts')
    local reason = nil
    if cur[1] then
      if cur[2] ~= name then
        reason = 'task id ' .. id .. ' already exists with name ' .. tostring(cur[2])
      elseif cur[1] == 'CANCELLED' and tonumber(cur[3]) == 0 then
        -- Submitted, then cancelled before any distributor took its envelope: nothing left to do.
        cur = nil
      elseif cur[1] ~= 'QUEUED' then
        reason = 'task id ' .. id .. ' already exists in state ' .. cur[1]
      end
    else
      new_record(task, KEYS[2], id, name, ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], now)
    end
    if reason then
      rcall('LPUSH', KEYS[3], cjson.encode({reason = reason, raw = raw, at = tonumber(now), distributor = ARGV[2]}))
      out[i] = reason
    elseif cur then
      rcall('ZADD', ready, ready_score(ARGV[a + 7], seq + i, ARGV[4]), id)
      out[i] = 1
      queued = true
    end
  end
end
if queued then rcall('PUBLISH', ARGV[3], 'ready') end
return out
