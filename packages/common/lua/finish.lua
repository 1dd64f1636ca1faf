--[[
  Record how attempts ended, a batch of one worker's at a time. Fenced on (epoch, assignment): a
  worker that was cut off and replaced is refused, so completion is recorded exactly once per task.
  A re-sent call whose first run already landed is recognised (same assignment, no longer RUNNING)
  and answered 2. STOPPED attempts go into the stopped index (a distributor requeues them), ended
  ones into the retention index, clean_end ones into the clean index.

  KEYS[1] worker-tasks:<worker>, [2] stopped, [3] ended, [4] clean, [5] completed, then one task
       hash per attempt
  ARGV[1] now, then 6 per attempt: id, epoch, assignment, outcome END|ERROR|CANCELLED|STOPPED,
       result json or error message, stop reason (for STOPPED)
  Returns one {code, state} per attempt: code 1 recorded, 2 not RUNNING any more under this fence,
  3 recorded as FAILED (attempts used up), 4 recorded as STOPPED for a retry, 0 refused; state is
  the record's state after the call.
]]
local now, out = ARGV[1], {}
for i = 6, #KEYS do
  local task, a = KEYS[i], 1 + (i - 6) * 6
  local id, outcome, payload = ARGV[a + 1], ARGV[a + 4], ARGV[a + 5]
  local cur = rcall('HMGET', task, 'epoch', 'assignment', 'state', 'failures', 'max_attempts', 'clean_end', 'completions', 'name')
  if cur[1] ~= ARGV[a + 2] or cur[2] ~= ARGV[a + 3] then
    out[i - 5] = {0, cur[3] or ''}
  elseif cur[3] ~= 'RUNNING' then
    out[i - 5] = {2, cur[3]}
  else
    rcall('SREM', KEYS[1], id)
    if outcome == 'END' then
      rcall('HSET', task, 'state', 'END', 'result', payload, 'error', '', 'ended_at', now, 'updated_at', now,
        'completions', tonumber(cur[7] or 0) + 1)
      terminal(KEYS[3], KEYS[5], id, cur[8], 'END', now)
      if cur[6] == '1' then rcall('SADD', KEYS[4], id) end
      out[i - 5] = {1, 'END'}
    elseif outcome == 'CANCELLED' then
      rcall('HSET', task, 'state', 'CANCELLED', 'error', payload, 'ended_at', now, 'updated_at', now)
      terminal(KEYS[3], KEYS[5], id, cur[8], 'CANCELLED', now)
      out[i - 5] = {1, 'CANCELLED'}
    elseif outcome == 'ERROR' then
      local failures = tonumber(cur[4] or 0) + 1
      if failures >= tonumber(cur[5]) then
        rcall('HSET', task, 'state', 'FAILED', 'failures', failures, 'error', payload, 'ended_at', now, 'updated_at', now)
        terminal(KEYS[3], KEYS[5], id, cur[8], 'FAILED', now)
        out[i - 5] = {3, 'FAILED'}
      else
        rcall('HSET', task, 'state', 'STOPPED', 'failures', failures, 'stop_reason', 'error', 'error', payload, 'updated_at', now)
        rcall('SADD', KEYS[2], id)
        out[i - 5] = {4, 'STOPPED'}
      end
    else
      rcall('HSET', task, 'state', 'STOPPED', 'stop_reason', ARGV[a + 6], 'updated_at', now)
      rcall('SADD', KEYS[2], id)
      out[i - 5] = {1, 'STOPPED'}
    end
  end
end
return out
