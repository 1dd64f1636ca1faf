--[[
  A worker confirms it runs the attempt it was given. Fenced on (epoch, assignment).

  KEYS[1] task hash
  ARGV[1] epoch, [2] assignment id, [3] now
  Returns 1 accepted, 0 refused (the attempt is not current).
]]
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'assignment', 'state')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or cur[3] ~= 'RUNNING' then return 0 end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
return 1
