-- Erasing conversations, shared by erase.lua (on request) and retention.lua (on schedule); loaded
-- after common.lua. A conversation is crypto-shredded: its wrapped data key goes FIRST, so whatever
-- ciphertext survives elsewhere (AOF files, replicas, backups) is unreadable from that moment; then
-- everything else of it. Every step is idempotent, so nodes racing over one conversation are safe.
--
-- Keys (P = the configured prefix), written by finish_conversation in common.lua:
--   P expiry:transcripts  zset  closed conversations that still hold a transcript, by closed_at (ms)
--   P expiry:metadata     zset  closed conversations that still hold metadata, by closed_at (ms)
--   P expiry:backfill_cursor, P expiry:backfilled  strings: retention.lua's one pass over the
--                               conversation index for conversations closed before these zsets

-- Destroys the data key and the sealed address, then the messages, the client-id map, the passed
-- set, the channel message ids, the resume token and undelivered outbox entries. Keeps the routing
-- metadata. Returns 1 when there was a data key to destroy.
local function shred(id)
  local ckey = P .. 'conv:' .. id
  local had_key = redis.call('HDEL', ckey, 'dek')
  redis.call('HDEL', ckey, 'addr')
  redis.call('DEL', P .. 'msgs:' .. id, P .. 'cmid:' .. id, P .. 'passed:' .. id,
    P .. 'chanmsgs:' .. id)
  local resume = hget(ckey, 'resume')
  if resume ~= nil then
    if redis.call('GET', resume) == id then redis.call('DEL', resume) end
    redis.call('HDEL', ckey, 'resume')
  end
  local ch = hget(ckey, 'channel')
  if ch ~= nil and ch ~= 'webchat' then
    local stream = P .. 'outbox:' .. ch
    local order = stream .. ':order:' .. id
    for _, eid in ipairs(redis.call('LRANGE', order, 0, -1)) do
      redis.call('XACK', stream, 'senders', eid)
      redis.call('XDEL', stream, eid)
      redis.call('HDEL', stream .. ':state', eid)
    end
    redis.call('DEL', order)
  end
  redis.call('ZREM', P .. 'expiry:transcripts', id)
  -- Every node drops the data key it may hold in memory.
  emit({ k = 'erased', conv = id })
  return had_key
end

-- Shreds the conversation and deletes what is left of it: its metadata (with the pseudonym and
-- alias) and its entry in the conversation index. Returns 1 when it existed.
local function erase_all(id)
  local ckey = P .. 'conv:' .. id
  local pseudonym = hget(ckey, 'pseudonym')
  shred(id)
  if pseudonym ~= nil then
    local lkey = P .. 'live:' .. pseudonym
    if redis.call('GET', lkey) == id then redis.call('DEL', lkey) end
  end
  redis.call('ZREM', P .. 'expiry:metadata', id)
  redis.call('SREM', P .. 'conversations', id)
  return redis.call('DEL', ckey)
end
