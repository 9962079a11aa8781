-- A sender node's heartbeat on a channel's outbox (run on its own, without the routing prelude).
-- KEYS[1] the outbox stream again, declared only so a Redis Cluster client routes the call; the
-- keys are built by the caller and passed as arguments, like every script here.
-- ARGV[1] the outbox stream, ARGV[2] its consumer group, ARGV[3] the consumers zset, ARGV[4] this
-- node's consumer name, ARGV[5] ms after which a silent node counts as gone, ARGV[6] ms of idleness
-- after which an entry nobody touches is taken anyway (held by a consumer that never beat).
--
-- 1. This node is alive now, and the entries it holds are touched (their idle time resets), so
--    only entries nobody looks after grow idle.
-- 2. Entries held by nodes that stopped beating are claimed by this node; a gone node holding
--    nothing is removed from the group.
-- 3. A safety net: entries idle for longer than ARGV[6] are claimed too (XAUTOCLAIM).
-- Returns how many entries this node claimed, so it reloads what it holds.
local stream, group, consumers, me = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local dead_after, stuck_after = tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local BATCH = 100

redis.call('ZADD', consumers, now, me)

local function ids_of(pending)
  local ids = {}
  for _, p in ipairs(pending) do table.insert(ids, p[1]) end
  return ids
end

local mine = ids_of(redis.call('XPENDING', stream, group, '-', '+', BATCH, me))
if #mine > 0 then
  redis.call('XCLAIM', stream, group, me, 0, unpack(mine), 'JUSTID')
end

local claimed = 0
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', consumers, '-inf', now - dead_after)) do
  if gone ~= me then
    local ids = ids_of(redis.call('XPENDING', stream, group, '-', '+', BATCH, gone))
    if #ids == 0 then
      redis.call('XGROUP', 'DELCONSUMER', stream, group, gone)
      redis.call('ZREM', consumers, gone)
    else
      redis.call('XCLAIM', stream, group, me, 0, unpack(ids), 'JUSTID')
      claimed = claimed + #ids
    end
  end
end

local stuck = redis.call('XAUTOCLAIM', stream, group, me, stuck_after, '0-0', 'COUNT', BATCH, 'JUSTID')
claimed = claimed + #stuck[2]
return claimed
