-- Shared prologue, prepended to every channel script.
-- KEYS[1] count    (STRING `channels:<pool>`: the live count, INCR/DECR, TTL safety net)
-- KEYS[2] holders  (ZSET `{channels:<pool>}:holders`: member = holder id, score = lease deadline ms)
-- The hash tag `{channels:<pool>}` hashes exactly like the untagged key `channels:<pool>`,
-- so both keys live in one Redis Cluster slot.
-- ARGV[1] now (ms) in every script.

-- Drops holders whose lease expired (a killed pod stopped renewing them) and gives their
-- channels back; then makes sure the count is never below the live holders (the count's
-- TTL fired, or the key was lost), so the pool can never be oversubscribed.
local function prune(now)
  local expired = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local count = tonumber(redis.call('GET', KEYS[1]) or '0')
  if expired > 0 then
    count = math.max(0, count - expired)
    redis.call('SET', KEYS[1], count, 'KEEPTTL')
  end
  local live = redis.call('ZCARD', KEYS[2])
  if count < live then
    redis.call('SET', KEYS[1], live, 'KEEPTTL')
    count = live
  end
  return expired
end

local function refresh_ttl(ttl)
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
