-- repair: drop expired holders and set the count to the number of live holders.
-- ARGV[1] now (ms)  ARGV[2] ttl (s)
-- Returns { count before, expired holders dropped, count after }.
local before = tonumber(redis.call('GET', KEYS[1]) or '0')
local expired = prune(tonumber(ARGV[1]))
local live = redis.call('ZCARD', KEYS[2])
redis.call('SET', KEYS[1], live)
refresh_ttl(tonumber(ARGV[2]))
return { before, expired, live }
