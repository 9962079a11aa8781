-- Counsellor ARGV[3] connected: their routing profile is written from their account (capacity
-- ARGV[4], skills ARGV[5] as a comma list, display name ARGV[6]). One seen for the first time, or
-- lost earlier, starts away. A changed capacity may free room, so free room is then used. The
-- status returned is the counsellor's status.
local u = ARGV[3]
local akey = P .. 'agent:' .. u
redis.call('HSET', akey, 'capacity', ARGV[4], 'skills', ARGV[5], 'display', ARGV[6])
local status = hget(akey, 'status')
if status ~= 'available' and status ~= 'away' then
  status = 'away'
  redis.call('HSET', akey, 'status', status)
end
refresh_free(u)
dispatch()
return finish(status)
