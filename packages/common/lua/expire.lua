--[[
  Retention: remove terminal records that ended before the cutoff, with their id in `tasks`. An id
  whose record is no longer terminal (run again since) only leaves the retention index.

  KEYS[1] tasks set, KEYS[2] ended, then one task hash per id
  ARGV[1] cutoff (ms), then one id per task hash
  Returns how many records were removed.
]]
local cutoff, n = tonumber(ARGV[1]), 0
for i = 3, #KEYS do
  local id = ARGV[i - 1]
  local due = rcall('ZSCORE', KEYS[2], id)
  if due and tonumber(due) <= cutoff then
    rcall('ZREM', KEYS[2], id)
    local state = rcall('HGET', KEYS[i], 'state')
    if not state or TERMINAL[state] then
      rcall('DEL', KEYS[i])
      rcall('SREM', KEYS[1], id)
      n = n + 1
    end
  end
end
return n
