--[[
  A worker's one write per interval, O(1) whatever it runs: its heartbeat, which keeps every task
  it runs alive. In the same call it takes what its inbox holds (takeovers and cancels written by
  the scripts that made them) and the size of its task index, so it can tell when a task is
  recorded against it that it never received (an assign frame that was lost).

  KEYS[1] worker hash, KEYS[2] inbox:<worker>, KEYS[3] worker-tasks:<worker>
  ARGV[1] now, [2] hash ttl ms, [3] running count
  Returns {-1} when the worker's hash is gone (register again), else {1, inbox entries, index size}.
]]
if rcall('EXISTS', KEYS[1]) == 0 then return {-1} end
rcall('HSET', KEYS[1], 'updated_at', ARGV[1], 'running', ARGV[3])
rcall('PEXPIRE', KEYS[1], ARGV[2])
local msgs = rcall('LPOP', KEYS[2], 1000) or {}
return {1, msgs, rcall('SCARD', KEYS[3])}
