-- Shared prelude of every routing script. Each script is this file followed by its own body, run
-- with EVALSHA, so a whole routing decision is one atomic step however many gateway nodes race.
--
-- ARGV[1] is always the key prefix and ARGV[2] a JSON object of routing settings; a script's own
-- arguments start at ARGV[3]. Time comes from Redis (TIME), so every node shares one clock.
--
-- Key layout (P = the configured prefix); the Rust side documents the same list in store/keys.rs:
--   P conv:ID            hash   state, channel, lang, topic, skills (current requirements, comma list),
--                               orig_skills, relaxed (0 none, 1 topic dropped, 2 language dropped),
--                               urgency, category, aged (0/1), queued_at, created_at, offered_to,
--                               offer_expires, counsellor, counsellor_name, assigned_at, first_response_at, closed_at,
--                               outcome, tags, alias, pseudonym, dek, addr, seq, lapsed
--   P queue:SIG          zset   queued conversation ids of one requirement signature, by score
--   P sigs               set    signatures whose queue is not empty
--   P waiting            zset   every queued conversation, by first queue time (ms)
--   P offers             zset   offered conversations, by offer expiry (ms)
--   P passed:ID          hash   counsellor -> ms until which they are not offered ID again
--   P agent:U            hash   status, capacity, skills, display, load, offers, idle_since, lapses
--   P agent:U:convs      set    active conversations of U
--   P agent:U:offered    set    conversations offered to U
--   P available          set    counsellors whose status is available
--   P seen:agents        zset   counsellor -> last heartbeat (ms) of any node holding their socket
--   P seen:contacts      zset   conversation -> last heartbeat (ms) of the node holding the contact
--   P waits:URGENCY      list   the last 20 waits (ms) of that class, for estimates
--   P conversations      set    every conversation not yet erased
--   P events             pub/sub channel of routing events (JSON)

local P = ARGV[1]
local S = cjson.decode(ARGV[2])
local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local EVENTS = {}

local RANK = { critical = 0, high = 1, normal = 2, low = 3 }
local CLASS_SPAN = 10000000000000 -- 1e13 ms: a class spans more than any queue time

local function emit(ev)
  local json = cjson.encode(ev)
  redis.call('PUBLISH', P .. 'events', json)
  table.insert(EVENTS, json)
end

local function finish(status)
  return { status or 'ok', EVENTS }
end

local function split(s)
  local out = {}
  if s == nil or s == false or s == '' then return out end
  for part in string.gmatch(s, '[^,]+') do table.insert(out, part) end
  return out
end

local function sig_of(skills)
  if skills == nil or skills == false or skills == '' then return '*' end
  return skills
end

local function hget(key, field)
  local v = redis.call('HGET', key, field)
  if v == false then return nil end
  return v
end

-- The class a conversation is served in: its urgency, raised one class by aging (never to critical).
local function class_rank(urgency, aged)
  local r = RANK[urgency] or 2
  if aged == '1' and r > 1 then r = r - 1 end
  return r
end

local function score_of(ckey)
  local f = redis.call('HMGET', ckey, 'urgency', 'aged', 'queued_at')
  local r = class_rank(f[1], f[2])
  return string.format('%.0f', r * CLASS_SPAN + tonumber(f[3]))
end

local function enqueue(id)
  local ckey = P .. 'conv:' .. id
  local sig = sig_of(hget(ckey, 'skills'))
  redis.call('HSET', ckey, 'state', 'queued')
  redis.call('HDEL', ckey, 'offered_to', 'offer_expires', 'counsellor')
  redis.call('ZADD', P .. 'queue:' .. sig, score_of(ckey), id)
  redis.call('SADD', P .. 'sigs', sig)
  redis.call('ZADD', P .. 'waiting', hget(ckey, 'queued_at'), id)
end

local function unqueue(id)
  local sig = sig_of(hget(P .. 'conv:' .. id, 'skills'))
  local qkey = P .. 'queue:' .. sig
  redis.call('ZREM', qkey, id)
  if redis.call('ZCARD', qkey) == 0 then redis.call('SREM', P .. 'sigs', sig) end
  redis.call('ZREM', P .. 'waiting', id)
end

local function agent_free(u)
  local a = redis.call('HMGET', P .. 'agent:' .. u, 'capacity', 'load', 'offers')
  return (tonumber(a[1]) or 0) - (tonumber(a[2]) or 0) - (tonumber(a[3]) or 0)
end

-- An offer (or, in auto mode, the conversation itself) goes to counsellor u.
local function activate(id, u)
  local ckey = P .. 'conv:' .. id
  local akey = P .. 'agent:' .. u
  local first = hget(ckey, 'assigned_at') == nil
  local display = hget(akey, 'display') or u
  redis.call('HSET', ckey, 'state', 'active', 'counsellor', u, 'counsellor_name', display,
    'assigned_at', NOW)
  redis.call('HDEL', ckey, 'offered_to', 'offer_expires')
  redis.call('HINCRBY', akey, 'load', 1)
  redis.call('SADD', akey .. ':convs', id)
  local f = redis.call('HMGET', ckey, 'queued_at', 'urgency', 'channel')
  local wait = NOW - tonumber(f[1])
  local wkey = P .. 'waits:' .. f[2]
  redis.call('LPUSH', wkey, wait)
  redis.call('LTRIM', wkey, 0, 19)
  emit({ k = 'assigned', conv = id, agent = u, display = display,
         wait_ms = wait, urgency = f[2], channel = f[3], first = first })
end

local function offer(id, u)
  local ckey = P .. 'conv:' .. id
  local akey = P .. 'agent:' .. u
  if S.assignment == 'auto' then return activate(id, u) end
  local expires = NOW + S.offer_timeout_ms
  redis.call('HSET', ckey, 'state', 'offered', 'offered_to', u, 'offer_expires', expires)
  redis.call('HINCRBY', akey, 'offers', 1)
  redis.call('SADD', akey .. ':offered', id)
  redis.call('ZADD', P .. 'offers', expires, id)
  emit({ k = 'offer', conv = id, agent = u, expires_ms = expires })
end

-- Takes back the standing offer of conversation id (if any); returns the counsellor it was offered to.
local function revoke(id, reason)
  local ckey = P .. 'conv:' .. id
  local u = hget(ckey, 'offered_to')
  if u == nil then return nil end
  local akey = P .. 'agent:' .. u
  redis.call('HINCRBY', akey, 'offers', -1)
  redis.call('SREM', akey .. ':offered', id)
  redis.call('ZREM', P .. 'offers', id)
  redis.call('HDEL', ckey, 'offered_to', 'offer_expires')
  emit({ k = 'revoked', conv = id, agent = u, reason = reason })
  return u
end

-- Releases counsellor u from active conversation id.
local function release(id, u)
  local akey = P .. 'agent:' .. u
  if redis.call('SREM', akey .. ':convs', id) == 1 then
    redis.call('HINCRBY', akey, 'load', -1)
    redis.call('HSET', akey, 'idle_since', NOW)
  end
end

local function set_status(u, status)
  local akey = P .. 'agent:' .. u
  redis.call('HSET', akey, 'status', status)
  if status == 'available' then
    redis.call('SADD', P .. 'available', u)
    if hget(akey, 'idle_since') == nil then redis.call('HSET', akey, 'idle_since', NOW) end
  else
    redis.call('SREM', P .. 'available', u)
  end
  emit({ k = 'status', agent = u, status = status })
end

-- Ends conversation id for good. `outcome` is stored; `reason` is what the contact and staff see.
local function finish_conversation(id, state, outcome, reason)
  local ckey = P .. 'conv:' .. id
  local prev = hget(ckey, 'state')
  if prev == 'queued' then unqueue(id) end
  if prev == 'offered' then revoke(id, 'ended') end
  local u = hget(ckey, 'counsellor')
  if prev == 'active' and u ~= nil then release(id, u) end
  redis.call('HSET', ckey, 'state', state, 'closed_at', NOW, 'outcome', outcome)
  redis.call('ZREM', P .. 'seen:contacts', id)
  redis.call('DEL', P .. 'passed:' .. id)
  local ch = hget(ckey, 'channel')
  emit({ k = 'ended', conv = id, agent = u, reason = reason, outcome = outcome, channel = ch,
         answered = (hget(ckey, 'assigned_at') ~= nil) })
end

local function is_live(state)
  return state == 'queued' or state == 'offered' or state == 'active'
end

-- A counsellor's skills as a set; language and topic requirements are plain skills.
local function skill_set(u)
  local set = {}
  for _, s in ipairs(split(hget(P .. 'agent:' .. u, 'skills'))) do set[s] = true end
  return set
end

local function eligible(skills, reqs)
  for _, r in ipairs(reqs) do
    if not skills[r] then return false end
  end
  return true
end

-- Whether counsellor u passed on conversation id a moment ago (declined it or let it lapse).
local function passed_on(id, u)
  return (tonumber(redis.call('HGET', P .. 'passed:' .. id, u)) or 0) > NOW
end

-- The queue heads a decision must consider for one signature: entries in queue order up to and
-- including the first one that none of the eligible free counsellors has passed on (nothing after
-- it can come first for any of them). Passes are rare, so this is usually one short read.
local HEADS = 5
local MAX_SCAN = 200
local function heads_of(sig, eligible_free, out)
  local reqs = split(sig ~= '*' and sig or '')
  for start = 0, MAX_SCAN - 1, HEADS do
    local r = redis.call('ZRANGE', P .. 'queue:' .. sig, start, start + HEADS - 1, 'WITHSCORES')
    for i = 1, #r, 2 do
      table.insert(out, { id = r[i], score = tonumber(r[i + 1]), reqs = reqs })
      local passed_by_some = false
      for _, a in ipairs(eligible_free) do
        if passed_on(r[i], a.name) then passed_by_some = true break end
      end
      if not passed_by_some then return end
    end
    if #r < HEADS * 2 then return end
  end
end

-- Hands queued conversations to free counsellors until no more pairs fit. A decision reads the
-- heads of each requirement signature's queue that some free counsellor may take, never the whole
-- queue: the most urgent, longest-waiting head is offered to the least loaded, then longest idle,
-- of the free counsellors who may take it.
local function dispatch()
  for _ = 1, 100 do
    local free = {}
    for _, u in ipairs(redis.call('SMEMBERS', P .. 'available')) do
      if agent_free(u) > 0 then
        local a = redis.call('HMGET', P .. 'agent:' .. u, 'load', 'offers', 'idle_since')
        table.insert(free, { name = u, busy = (tonumber(a[1]) or 0) + (tonumber(a[2]) or 0),
                             idle = tonumber(a[3]) or 0, skills = skill_set(u) })
      end
    end
    if #free == 0 then return end
    table.sort(free, function(a, b)
      if a.busy ~= b.busy then return a.busy < b.busy end
      if a.idle ~= b.idle then return a.idle < b.idle end
      return a.name < b.name
    end)
    local heads = {}
    for _, sig in ipairs(redis.call('SMEMBERS', P .. 'sigs')) do
      local reqs = split(sig ~= '*' and sig or '')
      local eligible_free = {}
      for _, a in ipairs(free) do
        if eligible(a.skills, reqs) then table.insert(eligible_free, a) end
      end
      if #eligible_free > 0 then heads_of(sig, eligible_free, heads) end
    end
    if #heads == 0 then return end
    table.sort(heads, function(a, b)
      if a.score ~= b.score then return a.score < b.score end
      return a.id < b.id
    end)
    local done = false
    for _, h in ipairs(heads) do
      for _, a in ipairs(free) do
        if eligible(a.skills, h.reqs) and not passed_on(h.id, a.name) then
          unqueue(h.id)
          offer(h.id, a.name)
          done = true
          break
        end
      end
      if done then break end
    end
    if not done then return end
  end
end

-- Counsellor u let go of an offer (declined or lapsed): they are not offered it again for a while,
-- and the conversation goes back to its place in the queue.
local function pass_offer(id, u, reason)
  revoke(id, reason)
  redis.call('HSET', P .. 'passed:' .. id, u, NOW + S.offer_timeout_ms)
  redis.call('PEXPIRE', P .. 'passed:' .. id, S.offer_timeout_ms * 4)
  enqueue(id)
end
