--[[
  A FAILED or CANCELLED task runs again with a fresh attempt budget: QUEUED, failures and stalls
  back to 0, the cancel flag cleared, epoch + 1 (so nothing from an earlier attempt can land).
  `attempts` keeps counting every start. It leaves the retention index.

  KEYS[1] task hash, KEYS[2] ready:<name>, KEYS[3] enqueue sequence counter, KEYS[4] ended,
  KEYS[5] clean
  ARGV[1] id, [2] now, [3] channel, [4] ready order
  Returns 'QUEUED' retried, the state it has when that is not FAILED or CANCELLED, '' unknown task.
]]
local t = rcall('HMGET', KEYS[1], 'state', 'priority')
if not t[1] then return '' end
if t[1] ~= 'FAILED' and t[1] ~= 'CANCELLED' then return t[1] end
rcall('HINCRBY', KEYS[1], 'epoch', 1)
rcall('HSET', KEYS[1], 'state', 'QUEUED', 'failures', 0, 'stalls', 0, 'cancel', '0', 'error', '',
  'result', '', 'ended_at', '', 'worker', '', 'assignment', '', 'stop_reason', '', 'updated_at', ARGV[2])
rcall('ZREM', KEYS[4], ARGV[1])
rcall('SREM', KEYS[5], ARGV[1])
rcall('ZADD', KEYS[2], ready_score(t[2], rcall('INCR', KEYS[3]), ARGV[4]), ARGV[1])
rcall('PUBLISH', ARGV[3], 'ready')
return 'QUEUED'
