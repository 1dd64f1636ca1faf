--[[
  A distributor keeps the heartbeat of every worker it hears current, in one call per interval,
  so a worker that lost only its own Redis link is not stale. A worker whose hash is gone is not
  brought back.

  KEYS worker hashes
  ARGV[1] now, [2] hash ttl ms
  Returns how many were touched.
]]
local n = 0
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'updated_at', ARGV[1])
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    n = n + 1
  end
end
return n
