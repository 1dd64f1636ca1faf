--[[
  Drop workers whose task index is empty from the index of workers with tasks (assign adds them
  back in the same script that gives them a task, so this cannot race one).

  KEYS[1] assigned, then worker-tasks:<worker> per worker
  ARGV one worker id per worker-tasks key
  Returns how many were dropped.
]]
local n = 0
for i = 2, #KEYS do
  if rcall('SCARD', KEYS[i]) == 0 then
    rcall('SREM', KEYS[1], ARGV[i - 1])
    n = n + 1
  end
end
return n
