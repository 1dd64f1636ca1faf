--[[
  RedisStore.queue: ask for a target to be notified of a task's value. Idempotent: a target
  already waiting keeps its place (targets are canonical JSON text).

  KEYS[1] task hash, KEYS[2] notify:<id> (sorted set: target -> order), KEYS[3] notify-pending
  (ids with waiting targets), KEYS[4] notify sequence counter
  ARGV[1] id, [2] target (canonical json)
  Returns 1 queued (or already waiting), 0 unknown task.
]]
if rcall('EXISTS', KEYS[1]) == 0 then return 0 end
if not rcall('ZSCORE', KEYS[2], ARGV[2]) then rcall('ZADD', KEYS[2], rcall('INCR', KEYS[4]), ARGV[2]) end
rcall('ZADD', KEYS[3], 'NX', 0, ARGV[1])
return 1
