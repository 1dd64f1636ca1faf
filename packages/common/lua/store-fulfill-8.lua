--[[
  RedisStore.fulfill without a lease (the seed lets anyone fulfil): a task that is not terminal
  becomes END with the value, wherever it is. A RUNNING attempt is taken from its worker (its
  inbox is told, like any takeover). The fenced path is the finish script.

  KEYS[1] task hash, KEYS[2] ready:<name>, KEYS[3] delayed, KEYS[4] stopped, KEYS[5] ended,
  KEYS[6] completed, KEYS[7] worker-tasks:<worker>, KEYS[8] inbox:<worker>
  ARGV[1] id, [2] value json, [3] now, [4] the worker the caller read from the record
  Returns 'FULFILLED', 'ALREADY' (terminal before), 'RETRY' (the worker changed), 'NOTFOUND'.
]]
local t = rcall('HMGET', KEYS[1], 'state', 'worker', 'epoch', 'name', 'completions')
if not t[1] then return 'NOTFOUND' end
if TERMINAL[t[1]] then return 'ALREADY' end
if t[1] == 'RUNNING' then
  if (t[2] or '') ~= ARGV[4] then return 'RETRY' end
  rcall('SREM', KEYS[7], ARGV[1])
  tell(KEYS[8], 'lost ' .. ARGV[1] .. ' ' .. t[3])
end
rcall('ZREM', KEYS[2], ARGV[1])
rcall('ZREM', KEYS[3], ARGV[1])
rcall('SREM', KEYS[4], ARGV[1])
rcall('HSET', KEYS[1], 'state', 'END', 'result', ARGV[2], 'error', '', 'assignment', '', 'ended_at', ARGV[3],
  'updated_at', ARGV[3], 'completions', tonumber(t[5] or 0) + 1)
terminal(KEYS[5], KEYS[6], ARGV[1], t[4], 'END', ARGV[3])
return 'FULFILLED'
