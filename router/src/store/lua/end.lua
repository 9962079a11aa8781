-- The contact left conversation ARGV[3]; ARGV[4] is the reason (contact_ended, inactive).
local id, reason = ARGV[3], ARGV[4]
local ckey = P .. 'conv:' .. id
local state = hget(ckey, 'state')
if not is_live(state) then return finish('not_live') end
if state == 'active' then
  finish_conversation(id, 'closed', reason, reason)
else
  finish_conversation(id, 'abandoned', 'abandoned', reason)
end
dispatch()
return finish()
