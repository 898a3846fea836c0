-- release: give back the channels of holders; unknown holders are ignored (idempotent).
-- ARGV[1] now (ms)  ARGV[2] ttl (s)  ARGV[3..] holder ids
-- Returns how many channels were released.
prune(tonumber(ARGV[1]))
local released = 0
for i = 3, #ARGV do
  if redis.call('ZREM', KEYS[2], ARGV[i]) == 1 then
    released = released + 1
    if redis.call('DECR', KEYS[1]) < 0 then
      redis.call('SET', KEYS[1], 0, 'KEEPTTL')
    end
  end
end
refresh_ttl(tonumber(ARGV[2]))
return released
