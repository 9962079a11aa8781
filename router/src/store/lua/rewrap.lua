-- Replaces a conversation's wrapped data key, but only if it is still the one the caller re-wrapped
-- (run on its own, without the routing prelude), so a key erased or changed meanwhile is left alone
-- and an erased conversation is never brought back.
-- KEYS[1] is ARGV[1] again, declared only so a Redis Cluster client routes the call.
-- ARGV[1] the conversation hash, ARGV[2] the wrapped key that was read, ARGV[3] its replacement,
-- ARGV[4] the field holding it when not `dek` (a staff account's `totp_key`).
-- Returns 1 when replaced, 0 when the stored key was no longer ARGV[2].
local field = ARGV[4] or 'dek'
if redis.call('HGET', ARGV[1], field) == ARGV[2] then
  redis.call('HSET', ARGV[1], field, ARGV[3])
  return 1
end
return 0
