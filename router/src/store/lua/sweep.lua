-- The periodic step every node runs (safe to run on all at once): offers that timed out, counsellors
-- whose connection is gone past the grace time, aging, skill relaxation, abandoned waits; then
-- dispatch. ARGV[3..] are unused; the settings come in S.

-- Offers that timed out go to the next counsellor; a counsellor who lets too many lapse is set away.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'offers', '-inf', NOW)) do
  local u = hget(P .. 'conv:' .. id, 'offered_to')
  if u ~= nil then
    pass_offer(id, u, 'timeout')
    local lapses = redis.call('HINCRBY', P .. 'agent:' .. u, 'lapses', 1)
    if lapses >= S.lapses_before_away and hget(P .. 'agent:' .. u, 'status') == 'available' then
      set_status(u, 'away')
    end
  else
    redis.call('ZREM', P .. 'offers', id)
  end
end

-- Counsellors no node has seen within the grace time lose their conversations back to the queue.
for _, u in ipairs(redis.call('ZRANGEBYSCORE', P .. 'seen:agents', '-inf', NOW - S.agent_grace_ms)) do
  local akey = P .. 'agent:' .. u
  for _, id in ipairs(redis.call('SMEMBERS', akey .. ':offered')) do
    revoke(id, 'ended')
    enqueue(id)
  end
  for _, id in ipairs(redis.call('SMEMBERS', akey .. ':convs')) do
    release(id, u)
    redis.call('HDEL', P .. 'conv:' .. id, 'counsellor')
    handed_back(id, u, true)
    enqueue(id)
  end
  set_status(u, 'offline')
  redis.call('ZREM', P .. 'seen:agents', u)
end

-- Aging and relaxation read only the conversations due a stage (due:STAGE, kept by enqueue and
-- unqueue), never all that waited long; at most DUE_BATCH per stage and sweep, the rest next time.
local DUE_BATCH = 1000
local function due(stage, ms)
  if ms <= 0 then return {} end
  return redis.call('ZRANGEBYSCORE', P .. 'due:' .. stage, '-inf', NOW - ms, 'LIMIT', 0, DUE_BATCH)
end

-- Re-queues a queued conversation with a field changed (and its requirements, if given).
local function move(id, skills, field, value)
  local ckey = P .. 'conv:' .. id
  unqueue(id)
  redis.call('HSET', ckey, field, value)
  if skills ~= nil then redis.call('HSET', ckey, 'skills', skills) end
  enqueue(id)
end

for _, id in ipairs(due('aging', S.aging_ms)) do move(id, nil, 'aged', '1') end

for _, id in ipairs(due('topic', S.relax_topic_ms)) do
  local ckey = P .. 'conv:' .. id
  local lang = hget(ckey, 'lang')
  local keep = {}
  for _, s in ipairs(split(hget(ckey, 'skills'))) do
    if s == lang then table.insert(keep, s) end
  end
  move(id, table.concat(keep, ','), 'relaxed', '1')
end

for _, id in ipairs(due('language', S.relax_language_ms)) do move(id, '', 'relaxed', '2') end

-- A waiting contact no node has seen for abandon_after: they left.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'seen:contacts', '-inf', NOW - S.abandon_ms)) do
  local state = hget(P .. 'conv:' .. id, 'state')
  if state == 'queued' or state == 'offered' then
    finish_conversation(id, 'abandoned', 'abandoned', 'inactive')
  elseif not is_live(state) then
    redis.call('ZREM', P .. 'seen:contacts', id)
  end
end

dispatch()

-- Contacts without a socket hear their position again at most once a minute, and only when it
-- improved on what they were last told (nobody is told a worse number).
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'feedback', '-inf', NOW, 'LIMIT', 0, 100)) do
  local pos = position_of(id)
  if pos == nil or sparing(hget(P .. 'conv:' .. id, 'channel')) then
    redis.call('ZREM', P .. 'feedback', id)
  else
    local told = tonumber(hget(P .. 'conv:' .. id, 'fb_pos'))
    if told == nil or pos < told then
      tell_position(id, pos)
    else
      redis.call('ZADD', P .. 'feedback', NOW + 5000, id)
    end
  end
end
return finish()
