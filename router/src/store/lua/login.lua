-- A staff login's effect on its account's lock-out state, in one atomic step on every node (run on
-- its own, without the routing prelude). The account hash keeps `failures` (consecutive failed
-- logins), `locked` ("1" once failures reach the limit) and `totp_step` (the last TOTP time step
-- accepted, so a code is never accepted twice).
-- KEYS[1] is ARGV[1] again, declared only so a Redis Cluster client routes the call.
-- ARGV[1] the account hash, ARGV[2] the outcome: "failed" or "succeeded",
-- ARGV[3] for "failed": failures that lock the account; for "succeeded": the TOTP step used, or "".
-- "failed" returns 2 when this failure locked the account, 1 otherwise, 0 for no such account.
-- "succeeded" returns 1, or 0 when the TOTP step is not newer than the last one accepted (a
-- replayed code: nothing is changed).
local key = ARGV[1]
if redis.call('EXISTS', key) == 0 then
  return 0
end
if ARGV[2] == 'failed' then
  local n = redis.call('HINCRBY', key, 'failures', 1)
  if n >= tonumber(ARGV[3]) and redis.call('HGET', key, 'locked') ~= '1' then
    redis.call('HSET', key, 'locked', '1')
    return 2
  end
  return 1
end
if ARGV[3] ~= '' then
  local last = tonumber(redis.call('HGET', key, 'totp_step') or '-1')
  if tonumber(ARGV[3]) <= last then
    return 0
  end
  redis.call('HSET', key, 'totp_step', ARGV[3])
end
redis.call('HSET', key, 'failures', '0')
return 1
