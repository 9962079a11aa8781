-- Stores one sealed message of conversation ARGV[3] in its stream, once per client message id.
-- ARGV[4] from (contact, counsellor, supervisor, system), ARGV[5] seq, ARGV[6] sealed text (base64),
-- ARGV[7] client message id or '', ARGV[8] 1 for a whisper (staff only), ARGV[9] the staff member
-- sending (counsellors may only write in their own active conversations; supervisors whisper in
-- active ones), ARGV[10] (optional) a notice code the contact is sent with it on a channel without
-- a socket (e.g. media_withheld), only when the message is new.
-- A counsellor's message to a contact without a socket also goes to the channel's outbox.
-- Returns { stream id (or the refusal), 1 if it was a duplicate, the channel, the time from the
-- assignment to a counsellor's first answer (ms) or false }: what the storing node counts. The
-- event itself reaches every node, this one included, by pub/sub.
local id, from, seq, sealed, cmid, whisper = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local ckey = P .. 'conv:' .. id
local skey = P .. 'msgs:' .. id
local dkey = P .. 'cmid:' .. id
if cmid ~= '' then
  local known = redis.call('HGET', dkey, from .. ':' .. cmid)
  if known then return { known, 1, '', false } end
end
-- One read for all the step needs of the conversation (false where a field is absent).
local c = redis.call('HMGET', ckey, 'state', 'counsellor', 'channel', 'first_response_at', 'assigned_at')
local state, counsellor, channel = c[1], c[2] or nil, c[3] or nil
if not is_live(state) then return { 'ended', 0, '', false } end
if from == 'counsellor' and (state ~= 'active' or counsellor ~= ARGV[9]) then
  return { 'not_yours', 0, '', false }
end
if from == 'supervisor' and state ~= 'active' then return { 'not_active', 0, '', false } end
local mid = redis.call('XADD', skey, '*', 'f', from, 's', seq, 'c', sealed, 't', NOW, 'w', whisper)
if cmid ~= '' then redis.call('HSET', dkey, from .. ':' .. cmid, mid) end
local first_response_ms = false
if from == 'counsellor' and not c[4] then
  redis.call('HSET', ckey, 'first_response_at', NOW)
  first_response_ms = NOW - (tonumber(c[5]) or NOW)
end
emit({ k = 'msg', conv = id, id = mid, f = from, s = tonumber(seq), c = sealed, t = NOW,
       w = whisper == '1', agent = counsellor, channel = channel })
if from == 'counsellor' and whisper ~= '1' and channel ~= 'webchat' then
  outbox(id, 'msg', { id = mid, s = seq })
end
local notice = ARGV[10]
if notice ~= nil and notice ~= '' then notify(id, notice) end
return { mid, 0, channel or '', first_response_ms }
