-- Keeps a channel message id of a conversation, so the contact may have it deleted later, but only
-- while the conversation still has its data key (run on its own, without the routing prelude): a
-- delivery that finishes after the conversation was erased must not bring its key list back.
-- KEYS[1] is ARGV[1] again, declared only so a Redis Cluster client routes the call.
-- ARGV[1] the conversation hash, ARGV[2] its list of message ids, ARGV[3] the message id,
-- ARGV[4] seconds to keep the list, ARGV[5] the most ids kept.
-- Returns 1 when kept, 0 when the conversation is erased (or unknown).
if redis.call('HEXISTS', ARGV[1], 'dek') == 0 then return 0 end
redis.call('RPUSH', ARGV[2], ARGV[3])
redis.call('LTRIM', ARGV[2], -tonumber(ARGV[5]), -1)
redis.call('EXPIRE', ARGV[2], ARGV[4])
return 1
