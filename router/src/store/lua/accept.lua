-- Counsellor ARGV[4] accepts the offer of conversation ARGV[3].
local id, u = ARGV[3], ARGV[4]
local ckey = P .. 'conv:' .. id
if hget(ckey, 'state') ~= 'offered' or hget(ckey, 'offered_to') ~= u then
  return finish('not_offered')
end
revoke(id, 'accepted')
redis.call('HSET', P .. 'agent:' .. u, 'lapses', 0)
activate(id, u)
return finish()
