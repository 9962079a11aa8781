-- A new conversation joins the queue. ARGV[3] id, ARGV[4] JSON of its fields, ARGV[5] resume key,
-- ARGV[6] resume key lifetime (s).
local id = ARGV[3]
local ckey = P .. 'conv:' .. id
local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do redis.call('HSET', ckey, k, v) end
redis.call('HSET', ckey, 'created_at', NOW, 'queued_at', NOW, 'orig_skills', fields.skills or '',
  'relaxed', 0, 'aged', 0, 'seq', 0, 'urgency', fields.urgency or 'normal')
redis.call('SET', ARGV[5], id, 'EX', ARGV[6])
redis.call('ZADD', P .. 'seen:contacts', NOW, id)
redis.call('SADD', P .. 'conversations', id)
enqueue(id)
emit({ k = 'queued', conv = id, channel = fields.channel })
dispatch()
return finish()
