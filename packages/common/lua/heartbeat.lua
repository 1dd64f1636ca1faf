--[[
  A worker's one write per interval: its heartbeat. In the same call it reads back every task it
  runs, so it learns within one interval which were taken from it or cancelled.

  KEYS[1] worker hash, KEYS[2..] task hashes of the running tasks
  ARGV[1] now, [2] hash ttl ms, [3] running count, then per task: epoch, assignment
  Returns {-1} when the worker's hash is gone (register again), else {1, lost indexes, cancel indexes}
  (1-based positions among the task keys).
]]
local rcall = redis.call
if rcall('EXISTS', KEYS[1]) == 0 then return {-1} end
rcall('HSET', KEYS[1], 'updated_at', ARGV[1], 'running', ARGV[3])
rcall('PEXPIRE', KEYS[1], ARGV[2])
local lost, cancel = {}, {}
for i = 2, #KEYS do
  local j = 4 + (i - 2) * 2
  local t = rcall('HMGET', KEYS[i], 'epoch', 'assignment', 'state', 'cancel')
  if t[1] ~= ARGV[j] or t[2] ~= ARGV[j + 1] or t[3] ~= 'RUNNING' then
    lost[#lost + 1] = i - 1
  elseif t[4] == '1' then
    cancel[#cancel + 1] = i - 1
  end
end
return {1, lost, cancel}
