--[[
  A notification lease: renew it (new expiry) or release it, only while the token still holds it.

  KEYS[1] notify-leases
  ARGV[1] id, [2] token, [3] 'renew' | 'release', [4] new expiry (renew)
  Returns 1 done, 0 the token does not hold the lease.
]]
local cur = rcall('HGET', KEYS[1], ARGV[1])
if not cur or string.sub(cur, 1, #ARGV[2] + 1) ~= ARGV[2] .. '|' then return 0 end
if ARGV[3] == 'renew' then
  rcall('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[4])
else
  rcall('HDEL', KEYS[1], ARGV[1])
end
return 1
