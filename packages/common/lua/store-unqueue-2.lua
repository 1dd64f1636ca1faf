--[[
  RedisStore.unqueue / done: remove targets; a task with none left leaves notify-pending.

  KEYS[1] notify:<id>, KEYS[2] notify-pending
  ARGV[1] id, then the targets (canonical json)
  Returns how many targets are still waiting.
]]
for i = 2, #ARGV do rcall('ZREM', KEYS[1], ARGV[i]) end
local left = rcall('ZCARD', KEYS[1])
if left == 0 then rcall('ZREM', KEYS[2], ARGV[1]) end
return left
