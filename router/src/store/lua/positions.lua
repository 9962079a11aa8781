-- Queue feedback for waiting contacts: for each id in ARGV[3..], { state, position, estimate_ms }.
-- Position counts the conversations ahead with the same requirements; the estimate is the mean of
-- the last waits of the same class (-1 when there is no history yet).
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local ckey = P .. 'conv:' .. id
  local f = redis.call('HMGET', ckey, 'state', 'skills', 'urgency')
  local pos, est = -1, -1
  if f[1] == 'queued' then
    local rank = redis.call('ZRANK', P .. 'queue:' .. sig_of(f[2]), id)
    if rank then pos = rank + 1 end
    local waits = redis.call('LRANGE', P .. 'waits:' .. (f[3] or 'normal'), 0, -1)
    if #waits > 0 then
      local sum = 0
      for _, w in ipairs(waits) do sum = sum + tonumber(w) end
      est = math.floor(sum / #waits)
    end
  end
  table.insert(out, { f[1] or 'unknown', pos, est })
end
return out
