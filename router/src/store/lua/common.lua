-- Shared prelude of every routing script. Each script is this file followed by its own body, run
-- with EVALSHA, so a whole routing decision is one atomic step however many gateway nodes race.
--
-- ARGV[1] is always the key prefix and ARGV[2] a JSON object of routing settings; a script's own
-- arguments start at ARGV[3]. Time comes from Redis (TIME), so every node shares one clock.
-- KEYS[1] is the waiting zset, declared only so a Redis Cluster client sends the call to the node
-- that owns the routing keys (one slot, through the prefix's hash tag); the scripts do not read it.
--
-- Key layout (P = the configured prefix); the Rust side documents the same list in store/keys.rs:
--   P conv:ID            hash   state, channel, lang, topic, skills (current requirements, comma list),
--                               orig_skills, relaxed (0 none, 1 topic dropped, 2 language dropped),
--                               urgency, category, aged (0/1), queued_at, created_at, offered_to,
--                               offer_expires, counsellor, counsellor_name, assigned_at, first_response_at, closed_at,
--                               outcome, tags, alias, pseudonym, dek, addr, seq, lapsed, wait_ms (first
--                               wait), resume (the resume token's key)
--   P queue:SIG          zset   queued conversation ids of one requirement signature, by score
--   P sigs               set    signatures whose queue is not empty
--   P waiting            zset   every queued conversation, by first queue time (ms)
--   P waiting:URGENCY:CHANNEL  zset  the queued conversations of one urgency and channel, by first
--                               queue time (ms): the queue gauges read their sizes and heads
--   P due:STAGE          zset   queued conversations that may still reach a stage by waiting (aging,
--                               topic, language: see sweep.lua), by first queue time (ms)
--   P offers             zset   offered conversations, by offer expiry (ms)
--   P passed:ID          hash   counsellor -> ms until which they are not offered ID again
--   P agent:U            hash   status, capacity, skills, display, load, offers, idle_since, lapses
--   P agent:U:convs      set    active conversations of U
--   P agent:U:offered    set    conversations offered to U
--   P available          set    counsellors whose status is available
--   P free               set    available counsellors with room (capacity above load + offers): the
--                               only ones a decision reads, kept by refresh_free on every change
--   P seen:agents        zset   counsellor -> last heartbeat (ms) of any node holding their socket
--   P seen:contacts      zset   conversation -> last heartbeat (ms) of the node holding the contact
--   P waits:URGENCY      list   the last 20 waits (ms) of that class, for estimates
--   P conversations      set    every conversation not yet erased
--   P events             pub/sub channel of routing events (JSON)
--   P live:PSEUDONYM     string the live conversation of a contact on a channel with addresses
--                               (Telegram, SMS: not web chat), so a new message joins it or starts one
--   P feedback           zset   waiting conversations of channels without a socket, by when their
--                               queue position may next be told (ms); conv fields fb_at, fb_pos
--   P outbox:CHANNEL     stream what a channel without a socket must send: conv, kind (msg: id, s;
--                               notice: code, vars, last), never text or an address
--   P outbox:CHANNEL:order:ID  list  the undelivered outbox entry ids of conversation ID, oldest first
--   P expiry:transcripts zset  closed conversations still holding a transcript, by closed_at (ms)
--   P expiry:metadata    zset  closed conversations still holding metadata, by closed_at (ms)
--   P stats:daily:DAY    hash   conversations ended on UTC day DAY (YYYY-MM-DD) by CHANNEL:URGENCY:
--                               OUTCOME: fields `…:count`, `…:answered`, `…:wait_ms` (sum of first
--                               waits); no id, no pseudonym; kept S.stats_keep_s

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

-- Contacts on channels without a socket (Telegram, SMS) are told things by message: a change that
-- concerns them also writes an entry to the channel's outbox, in the same atomic step, and the
-- conversation's order list keeps the entries in sequence. An entry holds ids, codes and
-- non-secret values (a position, a counsellor's display name); never text or an address.
local function outbox(id, kind, fields)
  local ch = redis.call('HGET', P .. 'conv:' .. id, 'channel')
  if ch == false or ch == 'webchat' or ch == '' then return end
  local args = { 'conv', id, 'kind', kind }
  for k, v in pairs(fields) do
    table.insert(args, k)
    table.insert(args, tostring(v))
  end
  local eid = redis.call('XADD', P .. 'outbox:' .. ch, '*', unpack(args))
  redis.call('RPUSH', P .. 'outbox:' .. ch .. ':order:' .. id, eid)
end

-- A notice (config/notices code) for the contact; `vars` fill its placeholders.
local function notify(id, code, vars, last)
  local f = { code = code }
  if vars ~= nil then f.vars = cjson.encode(vars) end
  if last then f.last = 1 end
  outbox(id, 'notice', f)
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

-- The stages a waiting conversation reaches by waiting long enough (sweep.lua), each with whether
-- it is still ahead given the conversation's `aged` and `relaxed` fields.
local DUE = {
  aging = function(aged, _) return aged ~= '1' end,
  topic = function(_, relaxed) return relaxed ~= '1' and relaxed ~= '2' end,
  language = function(_, relaxed) return relaxed ~= '2' end,
}

-- A conversation joins its signature's queue and the sets kept beside the queue (so nothing has to
-- scan the queue): every waiting one by first queue time, those of its urgency and channel, and
-- the stages still ahead of it. Only these two functions change them.
local function enqueue(id)
  local ckey = P .. 'conv:' .. id
  local f = redis.call('HMGET', ckey, 'skills', 'queued_at', 'urgency', 'channel', 'aged', 'relaxed')
  local sig, at, urgency = sig_of(f[1]), f[2], f[3] or 'normal'
  redis.call('HSET', ckey, 'state', 'queued')
  redis.call('HDEL', ckey, 'offered_to', 'offer_expires', 'counsellor')
  redis.call('ZADD', P .. 'queue:' .. sig, score_of(ckey), id)
  redis.call('SADD', P .. 'sigs', sig)
  redis.call('ZADD', P .. 'waiting', at, id)
  redis.call('ZADD', P .. 'waiting:' .. urgency .. ':' .. (f[4] or 'unknown'), at, id)
  for stage, ahead in pairs(DUE) do
    if ahead(f[5], f[6]) then redis.call('ZADD', P .. 'due:' .. stage, at, id) end
  end
end

local function unqueue(id)
  local f = redis.call('HMGET', P .. 'conv:' .. id, 'skills', 'urgency', 'channel', 'aged', 'relaxed')
  local sig, urgency = sig_of(f[1]), f[2] or 'normal'
  local qkey = P .. 'queue:' .. sig
  redis.call('ZREM', qkey, id)
  if redis.call('ZCARD', qkey) == 0 then redis.call('SREM', P .. 'sigs', sig) end
  redis.call('ZREM', P .. 'waiting', id)
  redis.call('ZREM', P .. 'waiting:' .. urgency .. ':' .. (f[3] or 'unknown'), id)
  for stage, ahead in pairs(DUE) do
    if ahead(f[4], f[5]) then redis.call('ZREM', P .. 'due:' .. stage, id) end
  end
end

-- A counsellor's status, and their room: capacity less active conversations and standing offers.
local function room_of(u)
  local a = redis.call('HMGET', P .. 'agent:' .. u, 'status', 'capacity', 'load', 'offers')
  return a[1], (tonumber(a[2]) or 0) - (tonumber(a[3]) or 0) - (tonumber(a[4]) or 0)
end

-- Keeps counsellor u in the free set exactly while they are available with room; called by every
-- step that changes a counsellor's status, capacity, load or offers.
local function refresh_free(u)
  local status, room = room_of(u)
  if status == 'available' and room > 0 then
    redis.call('SADD', P .. 'free', u)
  else
    redis.call('SREM', P .. 'free', u)
  end
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
  refresh_free(u)
  local f = redis.call('HMGET', ckey, 'queued_at', 'urgency', 'channel')
  local wait = NOW - tonumber(f[1])
  if first then redis.call('HSET', ckey, 'wait_ms', wait) end
  local wkey = P .. 'waits:' .. f[2]
  redis.call('LPUSH', wkey, wait)
  redis.call('LTRIM', wkey, 0, 19)
  redis.call('ZREM', P .. 'feedback', id)
  emit({ k = 'assigned', conv = id, agent = u, display = display,
         wait_ms = wait, urgency = f[2], channel = f[3], first = first })
  notify(id, 'assigned', { counsellor = display })
end

-- What a counsellor is shown of an offered conversation (the fields of its view), carried by the
-- offer event so that no node has to read it back before showing the offer.
local OFFER_VIEW = { 'alias', 'channel', 'lang', 'urgency', 'skills', 'relaxed', 'queued_at' }

local function offer(id, u)
  local ckey = P .. 'conv:' .. id
  local akey = P .. 'agent:' .. u
  if S.assignment == 'auto' then return activate(id, u) end
  local expires = NOW + S.offer_timeout_ms
  redis.call('HSET', ckey, 'state', 'offered', 'offered_to', u, 'offer_expires', expires)
  redis.call('HINCRBY', akey, 'offers', 1)
  redis.call('SADD', akey .. ':offered', id)
  refresh_free(u)
  redis.call('ZADD', P .. 'offers', expires, id)
  local f = redis.call('HMGET', ckey, unpack(OFFER_VIEW))
  local view = { state = 'offered' }
  for i, name in ipairs(OFFER_VIEW) do
    if f[i] then view[name] = f[i] end
  end
  emit({ k = 'offer', conv = id, agent = u, expires_ms = expires, view = view })
end

-- Takes back the standing offer of conversation id (if any); returns the counsellor it was offered to.
local function revoke(id, reason)
  local ckey = P .. 'conv:' .. id
  local u = hget(ckey, 'offered_to')
  if u == nil then return nil end
  local akey = P .. 'agent:' .. u
  redis.call('HINCRBY', akey, 'offers', -1)
  redis.call('SREM', akey .. ':offered', id)
  refresh_free(u)
  redis.call('ZREM', P .. 'offers', id)
  redis.call('HDEL', ckey, 'offered_to', 'offer_expires')
  emit({ k = 'revoked', conv = id, agent = u, reason = reason })
  return u
end

-- Counsellor u handed conversation id back (`lost`: their connection was gone); the caller queues it.
-- A contact without a socket is told, and hears their position again after a minute.
-- A sparing channel (S.sparing_channels, e.g. SMS: costly, and read by whoever holds the phone)
-- tells its contacts only one acknowledgement with their position, then `assigned` and `ended`.
local function sparing(ch)
  for _, c in ipairs(S.sparing_channels or {}) do
    if c == ch then return true end
  end
  return false
end

local FEEDBACK_EVERY_MS = 60000
local function handed_back(id, u, lost)
  emit({ k = 'transferred', conv = id, agent = u, lost = lost })
  local ckey = P .. 'conv:' .. id
  local ch = hget(ckey, 'channel')
  if sparing(ch) then return end
  notify(id, 'transferred')
  if ch ~= nil and ch ~= 'webchat' then
    redis.call('HSET', ckey, 'fb_at', NOW)
    redis.call('HDEL', ckey, 'fb_pos')
    redis.call('ZADD', P .. 'feedback', NOW + FEEDBACK_EVERY_MS, id)
  end
end

-- Where a waiting conversation stands: 1 while offered (it is next), else its rank in its queue.
local function position_of(id)
  local f = redis.call('HMGET', P .. 'conv:' .. id, 'state', 'skills')
  if f[1] == 'offered' then return 1 end
  if f[1] ~= 'queued' then return nil end
  local r = redis.call('ZRANK', P .. 'queue:' .. sig_of(f[2]), id)
  if not r then return nil end
  return r + 1
end

-- The mean of the last waits of an urgency class (ms), or nil without history.
local function estimate_ms(urgency)
  local waits = redis.call('LRANGE', P .. 'waits:' .. (urgency or 'normal'), 0, -1)
  if #waits == 0 then return nil end
  local sum = 0
  for _, w in ipairs(waits) do sum = sum + tonumber(w) end
  return math.floor(sum / #waits)
end

-- Tells a contact without a socket their queue position (and the estimated wait), and notes when,
-- so the sweep tells them again at most once a minute and only when it improved.
local function position_vars(id, pos)
  local vars = { position = pos }
  local est = estimate_ms(hget(P .. 'conv:' .. id, 'urgency'))
  if est ~= nil then vars.minutes = math.max(1, math.ceil(est / 60000)) end
  return vars
end

local function tell_position(id, pos)
  local ckey = P .. 'conv:' .. id
  notify(id, 'queued', position_vars(id, pos))
  redis.call('HSET', ckey, 'fb_at', NOW, 'fb_pos', pos)
  redis.call('ZADD', P .. 'feedback', NOW + FEEDBACK_EVERY_MS, id)
end

-- The notice a contact without a socket gets when their conversation ends, by reason; the last
-- entry of a conversation, after which its sender may forget the address.
local ENDED_NOTICE = {
  counsellor_closed = 'ended_by_counsellor',
  inactive = 'ended_inactive',
  contact_ended = 'ended_by_contact',
}

-- Releases counsellor u from active conversation id.
local function release(id, u)
  local akey = P .. 'agent:' .. u
  if redis.call('SREM', akey .. ':convs', id) == 1 then
    redis.call('HINCRBY', akey, 'load', -1)
    redis.call('HSET', akey, 'idle_since', NOW)
    refresh_free(u)
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
  refresh_free(u)
  emit({ k = 'status', agent = u, status = status })
end

-- The UTC day (YYYY-MM-DD) of a time in ms (Redis's Lua has no os.date): civil from days.
local function utc_day(ms)
  local z = math.floor(ms / 86400000) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02d', y, m, d)
end

-- Counts an ended conversation in the day's aggregates (no id, no pseudonym), which outlive the
-- conversation's own metadata (retention.metadata_s).
local function count_day(id, outcome)
  local f = redis.call('HMGET', P .. 'conv:' .. id, 'channel', 'urgency', 'wait_ms')
  local key = P .. 'stats:daily:' .. utc_day(NOW)
  local base = (f[1] or 'unknown') .. ':' .. (f[2] or 'normal') .. ':' .. outcome
  redis.call('HINCRBY', key, base .. ':count', 1)
  if f[3] then
    redis.call('HINCRBY', key, base .. ':answered', 1)
    redis.call('HINCRBY', key, base .. ':wait_ms', f[3])
  end
  redis.call('EXPIRE', key, S.stats_keep_s or 8 * 86400)
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
  redis.call('ZADD', P .. 'expiry:transcripts', NOW, id)
  redis.call('ZADD', P .. 'expiry:metadata', NOW, id)
  count_day(id, outcome)
  redis.call('ZREM', P .. 'seen:contacts', id)
  redis.call('ZREM', P .. 'feedback', id)
  redis.call('DEL', P .. 'passed:' .. id)
  local ch = hget(ckey, 'channel')
  local pseudonym = hget(ckey, 'pseudonym')
  if ch ~= 'webchat' and pseudonym ~= nil then
    local lkey = P .. 'live:' .. pseudonym
    if redis.call('GET', lkey) == id then redis.call('DEL', lkey) end
  end
  emit({ k = 'ended', conv = id, agent = u, reason = reason, outcome = outcome, channel = ch,
         answered = (hget(ckey, 'assigned_at') ~= nil) })
  local code = ENDED_NOTICE[reason]
  if code ~= nil then notify(id, code, nil, true) end
end

local function is_live(state)
  return state == 'queued' or state == 'offered' or state == 'active'
end

-- A counsellor's skills (comma list) as a set; language and topic requirements are plain skills.
local function skill_set(list)
  local set = {}
  for _, s in ipairs(split(list)) do set[s] = true end
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

-- Hands queued conversations to free counsellors until no more pairs fit. A decision reads only
-- the free counsellors (the free set: never the busy ones) and the heads of each requirement
-- signature's queue that one of them may take, never the whole queue: the most urgent,
-- longest-waiting head is offered to the least loaded, then longest idle, of the free counsellors
-- who may take it.
local function dispatch()
  for _ = 1, 100 do
    if redis.call('SCARD', P .. 'sigs') == 0 then return end
    local free = {}
    for _, u in ipairs(redis.call('SMEMBERS', P .. 'free')) do
      local a = redis.call('HMGET', P .. 'agent:' .. u, 'load', 'offers', 'idle_since', 'skills')
      table.insert(free, { name = u, busy = (tonumber(a[1]) or 0) + (tonumber(a[2]) or 0),
                           idle = tonumber(a[3]) or 0, skills = skill_set(a[4]) })
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
