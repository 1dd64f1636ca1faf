--[[
  The reliable move, many at a time: up to ARGV[1] envelopes from new-task (oldest first) into
  this distributor's processing list, where they stay until the intake script has recorded them.

  KEYS[1] new-task, KEYS[2] processing list
  ARGV[1] how many at most
  Returns the moved entries, oldest first (empty when new-task is empty).
]]
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local v = rcall('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not v then break end
  out[i] = v
end
return out
