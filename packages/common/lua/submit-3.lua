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
new_record(KEYS[2], KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], 'submit_token', ARGV[11])
rcall('LPUSH', KEYS[3], ARGV[10])
return 1
