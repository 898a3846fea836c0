-- acquire: take channels for holders, in order, until the pool is full.
-- ARGV[1] now (ms)  ARGV[2] lease (ms)  ARGV[3] pool max  ARGV[4] ttl (s)  ARGV[5..] holder ids
-- A holder that already holds a channel keeps it (its lease is renewed).
-- Returns how many of the holders, counted from the first, hold a channel now.
local now = tonumber(ARGV[1])
local deadline = now + tonumber(ARGV[2])
local max = tonumber(ARGV[3])
prune(now)
local granted = 0
for i = 5, #ARGV do
  local holder = ARGV[i]
  if redis.call('ZSCORE', KEYS[2], holder) then
    redis.call('ZADD', KEYS[2], deadline, holder)
  else
    local count = redis.call('INCR', KEYS[1])
    if count > max then
      redis.call('DECR', KEYS[1])
      break
    end
    redis.call('ZADD', KEYS[2], deadline, holder)
  end
  granted = granted + 1
end
refresh_ttl(tonumber(ARGV[4]))
return granted
