-- extend: renew the leases of jobs still being worked on.
-- KEYS[1] active
-- ARGV[1] new deadline (ms), then pairs: id, current lease
-- Returns one integer per job: 1 renewed (its lease is now ARGV[1]), 0 lease lost.
local results = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if tonumber(redis.call('ZSCORE', KEYS[1], id)) == tonumber(ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    results[#results + 1] = 1
  else
    results[#results + 1] = 0
  end
end
return results
