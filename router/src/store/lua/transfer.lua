-- Active conversation ARGV[3] is handed over by ARGV[4] (its counsellor, or '' for a supervisor):
-- to the queue with the required skills ARGV[5] (comma list; '' keeps them), or straight to
-- counsellor ARGV[6]. It keeps its first queue time and urgency, so it goes to the front of its class.
local id, by, skills, target = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ckey = P .. 'conv:' .. id
if hget(ckey, 'state') ~= 'active' then return finish('not_active') end
local u = hget(ckey, 'counsellor')
if by ~= '' and u ~= by then return finish('not_yours') end
if target ~= '' then
  if target == u then return finish('same_counsellor') end
  local status, room = room_of(target)
  if status ~= 'available' or room <= 0 then return finish('counsellor_unavailable') end
end
release(id, u)
handed_back(id, u, nil)
if skills ~= '' then
  redis.call('HSET', ckey, 'skills', skills, 'orig_skills', skills, 'relaxed', 0)
end
redis.call('HDEL', ckey, 'counsellor')
if target ~= '' then
  redis.call('HSET', ckey, 'state', 'queued')
  offer(id, target)
  dispatch()
else
  enqueue(id)
  dispatch()
end
return finish()
