-- A node says which counsellors and contacts it holds sockets for. ARGV[3] is the number of
-- counsellors that follow; the rest are conversation ids. A contact is only marked while its
-- conversation is live (XX: ended ones were removed and must not come back).
local n = tonumber(ARGV[3])
for i = 4, 3 + n do redis.call('ZADD', P .. 'seen:agents', NOW, ARGV[i]) end
for i = 4 + n, #ARGV do redis.call('ZADD', P .. 'seen:contacts', 'XX', NOW, ARGV[i]) end
return finish()
