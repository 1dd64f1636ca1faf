--[[
  A worker checks the fences of the attempts it runs: after its Redis link came back or its hash
  had to be written again (never per interval: that is the inbox's job).

  KEYS one task hash per attempt
  ARGV per attempt: epoch, assignment
  Returns {lost positions, cancel positions} (1-based).
]]
local lost, cancel = {}, {}
for i = 1, #KEYS do
  local t = rcall('HMGET', KEYS[i], 'epoch', 'assignment', 'state', 'cancel')
  if t[1] ~= ARGV[2 * i - 1] or t[2] ~= ARGV[2 * i] or t[3] ~= 'RUNNING' then
    lost[#lost + 1] = i
  elseif t[4] == '1' then
    cancel[#cancel + 1] = i
  end
end
return {lost, cancel}
