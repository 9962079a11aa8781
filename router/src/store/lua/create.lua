-- A new conversation joins the queue. ARGV[3] id, ARGV[4] JSON of its fields, ARGV[5] resume key,
-- ARGV[6] resume key lifetime (s). On a channel with addresses (not web chat) a contact has at most
-- one live conversation: if they have one, nothing is created and the status is `exists`. Such a
-- contact has no socket to heartbeat, so their wait is never counted as abandoned; they are told
-- welcome and their position by the channel's outbox instead (a sparing channel: in one message).
local id = ARGV[3]
local ckey = P .. 'conv:' .. id
local fields = cjson.decode(ARGV[4])
local by_message = fields.channel ~= 'webchat'
if by_message and fields.pseudonym then
  local lkey = P .. 'live:' .. fields.pseudonym
  local current = redis.call('GET', lkey)
  if current and is_live(hget(P .. 'conv:' .. current, 'state')) then return finish('exists') end
  redis.call('SET', lkey, id)
end
for k, v in pairs(fields) do redis.call('HSET', ckey, k, v) end
redis.call('HSET', ckey, 'created_at', NOW, 'queued_at', NOW, 'orig_skills', fields.skills or '',
  'relaxed', 0, 'aged', 0, 'seq', 0, 'urgency', fields.urgency or 'normal')
redis.call('SET', ARGV[5], id, 'EX', ARGV[6])
redis.call('HSET', ckey, 'resume', ARGV[5])
if not by_message then redis.call('ZADD', P .. 'seen:contacts', NOW, id) end
redis.call('SADD', P .. 'conversations', id)
enqueue(id)
emit({ k = 'queued', conv = id, channel = fields.channel })
if sparing(fields.channel) then
  -- One acknowledgement: welcome, position and wait in a single message, never repeated.
  local pos = position_of(id)
  local vars = nil
  if pos ~= nil then vars = position_vars(id, pos) end
  notify(id, 'welcome', vars)
  dispatch()
  return finish()
end
notify(id, 'welcome')
dispatch()
if by_message then
  local pos = position_of(id)
  if pos ~= nil then tell_position(id, pos) end
end
return finish()
