-- Conversation ARGV[3] gets urgency ARGV[4]; with ARGV[5] = 'raise' only if higher (the grader),
-- with 'set' either way (staff). ARGV[6] is the category that raised it, or ''.
local id, level, mode, category = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ckey = P .. 'conv:' .. id
local state = hget(ckey, 'state')
if not is_live(state) then return finish('not_live') end
local current = hget(ckey, 'urgency') or 'normal'
if mode == 'raise' and RANK[level] >= RANK[current] then return finish('unchanged') end
if level == current then return finish('unchanged') end
-- A queued conversation leaves the queue and joins it again: its score and its urgency's sets change.
if state == 'queued' then unqueue(id) end
redis.call('HSET', ckey, 'urgency', level)
if category ~= '' then redis.call('HSET', ckey, 'category', category) end
if state == 'queued' then enqueue(id) end
emit({ k = 'urgency', conv = id, agent = hget(ckey, 'counsellor') or hget(ckey, 'offered_to'),
       urgency = level, category = category })
return finish()
