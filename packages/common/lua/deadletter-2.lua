--[[
  Move one envelope that could not be parsed from the processing list to the dead list.

  KEYS[1] processing list, KEYS[2] dead list
  ARGV[1] raw envelope, ARGV[2] dead entry json
  Returns 1 moved, 0 already handled.
]]
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
return 1
