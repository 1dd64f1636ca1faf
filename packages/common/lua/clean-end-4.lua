--[[
  Delete an END record that asked for clean_end.

  KEYS[1] task hash, KEYS[2] tasks set, KEYS[3] clean index, KEYS[4] ended
  ARGV[1] id
  Returns 1 deleted, 0 not applicable.
]]
rcall('SREM', KEYS[3], ARGV[1])
local t = rcall('HMGET', KEYS[1], 'state', 'clean_end')
if t[1] ~= 'END' or t[2] ~= '1' then return 0 end
rcall('DEL', KEYS[1])
rcall('SREM', KEYS[2], ARGV[1])
rcall('ZREM', KEYS[4], ARGV[1])
return 1
