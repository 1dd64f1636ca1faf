--[[
  Delete an END record that asked for clean_end.

  KEYS[1] task hash, KEYS[2] tasks set
  ARGV[1] id
  Returns 1 deleted, 0 not applicable.
]]
local t = redis.call('HMGET', KEYS[1], 'state', 'clean_end')
if t[1] ~= 'END' or t[2] ~= '1' then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
