--[[
  Claim a QUEUED task for a worker: the only place an epoch starts. The ZREM arbitrates between
  distributors; the assignment id makes a re-sent call return the same answer instead of bumping
  the epoch twice.

  KEYS[1] ready:<name>, KEYS[2] task hash, KEYS[3] worker-tasks:<worker>
  ARGV[1] id, [2] worker id, [3] distributor id, [4] assignment id (random), [5] now
  Returns {epoch, attempts, config json, state_optional, clean_end} assigned, {-1, 0} another
  distributor took it, {-2, 0} not QUEUED any more.
]]
local rcall = redis.call
local cur = rcall('HMGET', KEYS[2], 'assignment', 'state', 'epoch', 'attempts', 'config', 'state_optional', 'clean_end')
if cur[1] == ARGV[4] then return {tonumber(cur[3]), tonumber(cur[4]), cur[5], cur[6], cur[7]} end
if rcall('ZREM', KEYS[1], ARGV[1]) == 0 then return {-1, 0} end
if cur[2] ~= 'QUEUED' then return {-2, 0} end
local epoch = rcall('HINCRBY', KEYS[2], 'epoch', 1)
local attempts = rcall('HINCRBY', KEYS[2], 'attempts', 1)
rcall('HSET', KEYS[2], 'state', 'RUNNING', 'worker', ARGV[2], 'distributor', ARGV[3],
  'assignment', ARGV[4], 'started_at', ARGV[5], 'updated_at', ARGV[5], 'stop_reason', '')
rcall('SADD', KEYS[3], ARGV[1])
return {epoch, attempts, cur[5], cur[6], cur[7]}
