--[[
  RedisStore.create: a new QUEUED task record that is runnable at once (no intake list), with the
  Store request kept beside its config.

  KEYS[1] tasks set, KEYS[2] task hash, KEYS[3] ready:<name>, KEYS[4] enqueue sequence counter
  ARGV[1] id, [2] name, [3] config json, [4] request json, [5] now, [6] channel, [7] ready order
  Returns 1 created, 0 the id exists.
]]
if rcall('EXISTS', KEYS[2]) == 1 then return 0 end
new_record(KEYS[2], KEYS[1], ARGV[1], ARGV[2], ARGV[3], 3, 5, 0, '0', '0', ARGV[5], 'request', ARGV[4])
rcall('ZADD', KEYS[3], ready_score(0, rcall('INCR', KEYS[4]), ARGV[7]), ARGV[1])
rcall('PUBLISH', ARGV[6], 'ready')
return 1
