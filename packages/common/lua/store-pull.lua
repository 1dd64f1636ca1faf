--[[
  RedisStore.pullNotification: lease the first candidate that is terminal, has waiting targets,
  and whose notification lease is free or expired. Exclusive: the lease is a compare-and-set.

  KEYS[1] notify-leases (hash: id -> "token|expires"), then per candidate: task hash, notify:<id>
  ARGV[1] now, [2] lease expiry, [3] token, then one id per candidate
  Returns {id, state, result, error, targets...} leased, or {} when none is ready.
]]
local now = tonumber(ARGV[1])
for i = 1, (#KEYS - 1) / 2 do
  local task, notify, id = KEYS[2 * i], KEYS[2 * i + 1], ARGV[3 + i]
  local st = rcall('HMGET', task, 'state', 'result', 'error')
  if TERMINAL[st[1]] and rcall('ZCARD', notify) > 0 then
    local cur = rcall('HGET', KEYS[1], id)
    local expires = cur and tonumber(string.match(cur, '|(%d+)$')) or 0
    if expires <= now then
      rcall('HSET', KEYS[1], id, ARGV[3] .. '|' .. ARGV[2])
      local out = {id, st[1], st[2] or '', st[3] or ''}
      for _, t in ipairs(rcall('ZRANGE', notify, 0, -1)) do out[#out + 1] = t end
      return out
    end
  end
end
return {}
