--[[
  A worker gives back a task recorded against it that it does not run (its assign frame never
  arrived): still RUNNING on this worker, it becomes STOPPED with stop_reason 'unassigned', which
  requeue treats like a refusal (the start does not count). Otherwise the id is only a stale member
  of the worker's set and is dropped. One script, so a reassignment in between cannot be lost.

  KEYS[1] task hash, KEYS[2] worker-tasks:<worker>, KEYS[3] stopped
  ARGV[1] id, [2] worker id, [3] now
  Returns {1, epoch, assignment} given back, {0} only dropped from the set.
]]
local t = rcall('HMGET', KEYS[1], 'state', 'worker', 'epoch', 'assignment')
rcall('SREM', KEYS[2], ARGV[1])
if t[1] == 'RUNNING' and t[2] == ARGV[2] then
  rcall('HSET', KEYS[1], 'state', 'STOPPED', 'stop_reason', 'unassigned', 'updated_at', ARGV[3])
  rcall('SADD', KEYS[3], ARGV[1])
  return {1, tonumber(t[3]), t[4]}
end
return {0}
