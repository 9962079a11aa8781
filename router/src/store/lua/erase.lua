-- Erasure on request of conversation ARGV[3] (the contact asked, or a supervisor): a live
-- conversation ends first (reason `erased`, so the counsellor's console drops it and says why; the
-- daily aggregates count it), then it is erased at once: data key first, then everything else.
-- Status `not_found` when there is no such conversation (erased already).
local id = ARGV[3]
local ckey = P .. 'conv:' .. id
local state = hget(ckey, 'state')
if state == nil then return finish('not_found') end
if is_live(state) then
  if state == 'active' then
    finish_conversation(id, 'closed', 'erased', 'erased')
  else
    finish_conversation(id, 'abandoned', 'abandoned', 'erased')
  end
  dispatch()
end
erase_all(id)
return finish()
