-- One retention sweep (any node, any number at once): the transcripts of conversations closed more
-- than ARGV[3] ms ago are shredded, then the metadata of those closed more than ARGV[4] ms ago is
-- deleted, at most ARGV[5] conversations of each; audit entries older than ARGV[6] ms are trimmed.
-- Returns { transcripts, metadata, audit entries } erased.
local transcripts_ms, metadata_ms, batch, audit_ms =
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
-- Conversations closed before the expiry zsets existed (an upgraded helpline) are found by walking
-- the conversation index one page per sweep, until a whole pass is done.
local done_key = P .. 'expiry:backfilled'
if redis.call('EXISTS', done_key) == 0 then
  local cursor_key = P .. 'expiry:backfill_cursor'
  local page = redis.call('SSCAN', P .. 'conversations', redis.call('GET', cursor_key) or '0',
    'COUNT', batch)
  for _, id in ipairs(page[2]) do
    local f = redis.call('HMGET', P .. 'conv:' .. id, 'state', 'closed_at', 'dek')
    if f[1] and not is_live(f[1]) and f[2] then
      redis.call('ZADD', P .. 'expiry:metadata', 'NX', f[2], id)
      if f[3] or redis.call('EXISTS', P .. 'msgs:' .. id) == 1 then
        redis.call('ZADD', P .. 'expiry:transcripts', 'NX', f[2], id)
      end
    end
  end
  if page[1] == '0' then
    redis.call('SET', done_key, 1)
    redis.call('DEL', cursor_key)
  else
    redis.call('SET', cursor_key, page[1])
  end
end

local shredded = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiry:transcripts', '-inf',
    NOW - transcripts_ms, 'LIMIT', 0, batch)) do
  shred(id)
  shredded = shredded + 1
end
local deleted = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiry:metadata', '-inf',
    NOW - metadata_ms, 'LIMIT', 0, batch)) do
  erase_all(id)
  deleted = deleted + 1
end
local trimmed = redis.call('XTRIM', P .. 'audit', 'MINID', string.format('%.0f', NOW - audit_ms))
return { shredded, deleted, trimmed }
