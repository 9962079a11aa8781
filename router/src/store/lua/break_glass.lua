-- One step of a break-glass request (run on its own, without the routing prelude), so two nodes
-- or two supervisors can never both approve, or both reveal, one request.
-- The request hash keeps conv, channel, requester, reason, state (pending, approved, denied,
-- revealed, expired), created and deadline (ms: until when it may be approved while pending, or
-- revealed once approved) and approver. The open zset holds the ids of pending and approved
-- requests, scored by deadline, for the sweep that expires them.
-- KEYS[1] is ARGV[1] again, declared only so a Redis Cluster client routes the call.
-- ARGV[1] the request hash, ARGV[2] the open zset, ARGV[3] the request id, ARGV[4] the step
-- ("approve", "deny", "reveal", "expire"), ARGV[5] the supervisor (empty for "expire"),
-- ARGV[6] now (ms), ARGV[7] the window (ms) an approval leaves for the reveal,
-- ARGV[8] seconds the record is kept after a change (for the lists; the audit log keeps history).
-- Returns {status, conv, requester}: status "ok", or a refusal: "unknown", "expired" (this call
-- found the deadline passed and expired it), "was_expired", "not_pending", "same_supervisor",
-- "not_requester", "not_approved", "already_revealed"; "expire" answers "expired" when it expired
-- the request, "no" otherwise.
local key, open, id, step, who = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, window, keep = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call('EXISTS', key) == 0 then
  redis.call('ZREM', open, id)
  return {'unknown', '', ''}
end
local r = redis.call('HMGET', key, 'state', 'deadline', 'requester', 'conv')
local state, deadline, requester, conv = r[1], tonumber(r[2]), r[3], r[4]
local function answer(status)
  return {status, conv, requester}
end
local live = state == 'pending' or state == 'approved'
if live and now > deadline then
  redis.call('HSET', key, 'state', 'expired')
  redis.call('ZREM', open, id)
  redis.call('EXPIRE', key, keep)
  return answer('expired')
end
if step == 'expire' then
  if not live then
    redis.call('ZREM', open, id)
  end
  return answer('no')
end
if state == 'expired' then
  return answer('was_expired')
end
if step == 'approve' or step == 'deny' then
  if state ~= 'pending' then
    return answer('not_pending')
  end
  if who == requester then
    return answer('same_supervisor')
  end
  if step == 'approve' then
    redis.call('HSET', key, 'state', 'approved', 'approver', who, 'deadline', now + window)
    redis.call('ZADD', open, now + window, id)
  else
    redis.call('HSET', key, 'state', 'denied', 'approver', who)
    redis.call('ZREM', open, id)
  end
  redis.call('EXPIRE', key, keep)
  return answer('ok')
end
-- step == 'reveal'
if who ~= requester then
  return answer('not_requester')
end
if state == 'revealed' then
  return answer('already_revealed')
end
if state ~= 'approved' then
  return answer('not_approved')
end
redis.call('HSET', key, 'state', 'revealed')
redis.call('ZREM', open, id)
redis.call('EXPIRE', key, keep)
return answer('ok')
