--[[
  A worker gives back a task recorded against it that it does not run (its assign frame never
  arrived): still RUNNING on this worker, it becomes STOPPED with stop_reason 'unassigned', which
  requeue treats like a refusal (the start does not count). Otherwise the id is only a stale member
  of the worker's set and is dropped. One script, so a reassignment in between cannot be lost.

  KEYS[1] task hash, KEYS[2] worker-tasks:<worker>
  ARGV[1] id, [2] worker id, [3] now
  Returns {1, epoch, assignment} given back, {0} only dropped from the set.
]]
local rcall = redis.call
local t = rcall('HMGET', KEYS[1], 'state', 'worker', 'epoch', 'assignment')
if t[1] == 'RUNNING' and t[2] == ARGV[2] then
  rcall('SREM', KEYS[2], ARGV[1])
  rcall('HSET', KEYS[1], 'state', 'STOPPED', 'stop_reason', 'unassigned', 'updated_at', ARGV[3])
  return {1, tonumber(t[3]), t[4]}
end
rcall('SREM', KEYS[2], ARGV[1])
return {0}
