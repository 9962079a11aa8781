-- Conversation ARGV[3] is closed by ARGV[4] (its counsellor, or '' for a supervisor) with outcome
-- ARGV[5] and tags ARGV[6].
local id, by = ARGV[3], ARGV[4]
local ckey = P .. 'conv:' .. id
if hget(ckey, 'state') ~= 'active' then return finish('not_active') end
if by ~= '' and hget(ckey, 'counsellor') ~= by then return finish('not_yours') end
redis.call('HSET', ckey, 'tags', ARGV[6])
finish_conversation(id, 'closed', ARGV[5], 'counsellor_closed')
dispatch()
return finish()
