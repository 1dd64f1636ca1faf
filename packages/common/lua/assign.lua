--[[
  Claim QUEUED tasks of one name for one worker. An epoch starts only here and in intake's
  hand-over (intake.lua), both through attempt_fields. The ZREM arbitrates between distributors;
  the assignment id makes a re-sent call return the same answer instead of bumping the epoch
  twice. This write is also the attempt's start (started_at).

  KEYS[1] ready:<name>, KEYS[2] worker-tasks:<worker>, KEYS[3] assigned (workers with tasks),
       then one task hash per task
  ARGV[1] worker id, [2] distributor id, [3] now, then per task: id, assignment id (random)
  Returns one entry per task: {epoch, attempts, config json, state_optional, clean_end, queued_at}
  assigned (queued_at: the QUEUED record's updated_at, when it was created or requeued, for the
  queue-wait metric; absent on a re-sent call),
  {-1} another distributor took it, {-2} not QUEUED any more.
]]
local now, out, any = ARGV[3], {}, false
for i = 4, #KEYS do
  local task, id, asg = KEYS[i], ARGV[2 * i - 4], ARGV[2 * i - 3]
  local cur = rcall('HMGET', task, 'assignment', 'state', 'epoch', 'attempts', 'config', 'state_optional', 'clean_end', 'updated_at')
  if cur[1] == asg then
    out[i - 3] = {tonumber(cur[3]), tonumber(cur[4]), cur[5], cur[6], cur[7]}
  elseif rcall('ZREM', KEYS[1], id) == 0 then
    out[i - 3] = {-1}
  elseif cur[2] ~= 'QUEUED' then
    out[i - 3] = {-2}
  else
    local epoch, attempts = tonumber(cur[3] or 0) + 1, tonumber(cur[4] or 0) + 1
    rcall('HSET', task, attempt_fields(epoch, attempts, ARGV[1], ARGV[2], asg, now))
    rcall('SADD', KEYS[2], id)
    any = true
    out[i - 3] = {epoch, attempts, cur[5], cur[6], cur[7], cur[8]}
  end
end
if any then rcall('SADD', KEYS[3], ARGV[1]) end
return out
