--[[
  Create a task record as QUEUED and push its envelope onto the intake list, atomically.
  Idempotent on the submit token, because ioredis re-sends a command whose reply was lost.

  KEYS[1] tasks set, KEYS[2] task hash, KEYS[3] new-task list
  ARGV[1] id, [2] name, [3] config json, [4] max_attempts, [5] max_stalls, [6] priority,
       [7] state_optional "1"/"0", [8] clean_end "1"/"0", [9] now ms, [10] envelope json, [11] submit token
  Returns 1 created, 0 an id that already exists.
]]

if rcall('EXISTS', KEYS[2]) == 1 then
  if rcall('HGET', KEYS[2], 'submit_token') == ARGV[11] then return 1 end
  return 0
end
rcall('HSET', KEYS[2], 'id', ARGV[1], 'name', ARGV[2], 'config', ARGV[3], 'state', 'QUEUED',
  'attempts', 0, 'max_attempts', ARGV[4], 'stalls', 0, 'max_stalls', ARGV[5], 'failures', 0,
  'epoch', 0, 'assignment', '', 'worker', '', 'distributor', '', 'priority', ARGV[6],
  'state_optional', ARGV[7], 'clean_end', ARGV[8], 'cancel', '0', 'completions', 0,
  'created_at', ARGV[9], 'updated_at', ARGV[9], 'submit_token', ARGV[11])
rcall('SADD', KEYS[1], ARGV[1])
rcall('LPUSH', KEYS[3], ARGV[10])
return 1
