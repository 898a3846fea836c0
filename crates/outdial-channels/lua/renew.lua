-- renew: extend the leases of holders whose calls are still live.
-- ARGV[1] now (ms)  ARGV[2] lease (ms)  ARGV[3] ttl (s)  ARGV[4..] holder ids
-- Returns how many holders were renewed (holders no longer present are not re-added).
local now = tonumber(ARGV[1])
prune(now)
local deadline = now + tonumber(ARGV[2])
local renewed = 0
for i = 4, #ARGV do
  if redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('ZADD', KEYS[2], deadline, ARGV[i])
    renewed = renewed + 1
  end
end
refresh_ttl(tonumber(ARGV[3]))
return renewed
