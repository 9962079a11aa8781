-- Counsellor ARGV[4] declines the offer of conversation ARGV[3]: it goes to the next counsellor.
local id, u = ARGV[3], ARGV[4]
local ckey = P .. 'conv:' .. id
if hget(ckey, 'state') ~= 'offered' or hget(ckey, 'offered_to') ~= u then
  return finish('not_offered')
end
pass_offer(id, u, 'declined')
dispatch()
return finish()
