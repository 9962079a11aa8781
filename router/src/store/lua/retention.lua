-- One retention sweep (any node, any number at once): the transcripts of conversations closed more
-- than ARGV[3] ms ago are shredded, then the metadata of those closed more than ARGV[4] ms ago is
-- deleted, at most ARGV[5] conversations of each; audit entries older than ARGV[6] ms are trimmed.
-- Returns { transcripts, metadata, audit entries } erased.
local transcripts_ms, metadata_ms, batch, audit_ms =
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
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
