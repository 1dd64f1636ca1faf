--[[
  A worker's one write per interval: its heartbeat. In the same call it reads back every task it
  runs, so it learns within one interval which were taken from it or cancelled, and it lists the
  tasks recorded against it that it does not run (an assign frame that never arrived), so it can
  give them back.

  KEYS[1] worker hash, KEYS[2] worker-tasks:<worker>, KEYS[3..] task hashes of the running tasks
  ARGV[1] now, [2] hash ttl ms, [3] running count, then per running task: id, epoch, assignment
  Returns {-1} when the worker's hash is gone (register again), else
  {1, lost positions, cancel positions, ids recorded against the worker that it did not report}
  (positions are 1-based among the running tasks).
]]
local rcall = redis.call
if rcall('EXISTS', KEYS[1]) == 0 then return {-1} end
rcall('HSET', KEYS[1], 'updated_at', ARGV[1], 'running', ARGV[3])
rcall('PEXPIRE', KEYS[1], ARGV[2])
local lost, cancel, reported = {}, {}, {}
for i = 3, #KEYS do
  local j = 4 + (i - 3) * 3
  reported[ARGV[j]] = true
  local t = rcall('HMGET', KEYS[i], 'epoch', 'assignment', 'state', 'cancel')
  if t[1] ~= ARGV[j + 1] or t[2] ~= ARGV[j + 2] or t[3] ~= 'RUNNING' then
    lost[#lost + 1] = i - 2
  elseif t[4] == '1' then
    cancel[#cancel + 1] = i - 2
  end
end
local unknown = {}
for _, id in ipairs(rcall('SMEMBERS', KEYS[2])) do
  if not reported[id] then unknown[#unknown + 1] = id end
end
return {1, lost, cancel, unknown}
