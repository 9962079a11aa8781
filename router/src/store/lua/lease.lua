-- A lease only one node holds at a time (run on its own, without the routing prelude).
-- KEYS[1] is ARGV[1] again, declared only so a Redis Cluster client routes the call.
-- ARGV[1] the lease key, ARGV[2] this node, ARGV[3] 'take' (take or renew for ARGV[4] ms) or
-- 'drop' (give it up if held). Returns 1 when this node holds the lease afterwards.
local key, me, op = ARGV[1], ARGV[2], ARGV[3]
local holder = redis.call('GET', key)
if op == 'drop' then
  if holder == me then redis.call('DEL', key) end
  return 0
end
if holder == me then
  redis.call('PEXPIRE', key, ARGV[4])
  return 1
end
if holder == false then
  redis.call('SET', key, me, 'PX', ARGV[4])
  return 1
end
return 0
