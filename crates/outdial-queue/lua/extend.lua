-- extend: renew the leases of jobs still being worked on.
-- KEYS[1] active  KEYS[2] leases  KEYS[3] holders
-- ARGV[1] new deadline (ms), ARGV[2] holder, then pairs: id, lease token
-- Returns one integer per job: 1 renewed (its deadline is now ARGV[1]), 0 lease lost.
-- The token is unchanged: a settle built before the renewal still matches. The holder's
-- heartbeat moves to the new deadline too (see reserve.lua: who counts as alive).
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
local results = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if tonumber(redis.call('HGET', KEYS[2], id)) == tonumber(ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    results[#results + 1] = 1
  else
    results[#results + 1] = 0
  end
end
return results
