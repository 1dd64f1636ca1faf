--[[
  Move one envelope that could not be accepted from the processing list to the dead list. If it
  named a task that a client created with submit and that never ran (state QUEUED, no attempt),
  that record is FAILED with the reason, so nobody waits on it forever.

  KEYS[1] processing list, KEYS[2] dead list, KEYS[3] task hash of the id the envelope named
  (any key when it named none: it is then not read), KEYS[4] ended (the retention index),
  KEYS[5] completed
  ARGV[1] raw envelope (exact bytes), ARGV[2] dead entry json, ARGV[3] reason, ARGV[4] now,
  ARGV[5] task id ('' when the envelope named none)
  Returns 1 moved, 0 already handled.
]]
if rcall('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
rcall('LPUSH', KEYS[2], ARGV[2])
if ARGV[5] == '' then return 1 end
local t = rcall('HMGET', KEYS[3], 'state', 'attempts', 'submit_token', 'name')
if t[1] == 'QUEUED' and t[2] == '0' and t[3] then
  rcall('HSET', KEYS[3], 'state', 'FAILED', 'error', 'envelope refused: ' .. ARGV[3], 'ended_at', ARGV[4], 'updated_at', ARGV[4])
  terminal(KEYS[4], KEYS[5], ARGV[5], t[4], 'FAILED', ARGV[4])
end
return 1
