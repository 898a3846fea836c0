-- reserve: lease up to N due jobs in one round trip, after returning expired leases.
-- KEYS[1] scheduled  KEYS[2] active  KEYS[3] jobs  KEYS[4] stalls
-- KEYS[5] dead  KEYS[6] dead-jobs  KEYS[7] dead-errors  KEYS[8] leases  KEYS[9] lease-holders
-- KEYS[10] lease-seq  KEYS[11] holders
-- ARGV[1] now (ms)  ARGV[2] lease (ms)  ARGV[3] max jobs  ARGV[4] max stalls  ARGV[5] holder
-- Returns { lease deadline, next wake-up ms or -1, recovered, stalled-to-dead, first token,
--           id1, due1, envelope1, id2, due2, envelope2, ... }
-- Job i (from 1) holds lease token `first token + i - 1`: a fencing token that stays the
-- same when the lease is renewed, so settling never races with renewal.
-- An envelope is nil when the jobs hash lost it (reported as corrupt by the client).
local now = tonumber(ARGV[1])
local deadline = now + tonumber(ARGV[2])
local max_stalls = tonumber(ARGV[4])
local holder = ARGV[5]

-- 1. Leases past their deadline: back to waiting. A holder is alive while its heartbeat
--    (the deadline of its latest reserve or renewal, in `holders`) is in the future. A
--    job whose holder is gone (a killed pod) just returns; one that outlived a live
--    holder's lease stalled (its holder stopped renewing it) and goes to the dead-letter
--    set once that happened more than max_stalls times.
local recovered, buried = 0, 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[8], id)
  local owner = redis.call('HGET', KEYS[9], id)
  redis.call('HDEL', KEYS[9], id)
  local live = false
  if owner then
    local beat = redis.call('ZSCORE', KEYS[11], owner)
    live = beat and tonumber(beat) > now
  end
  local stalls = 0
  if live then stalls = redis.call('HINCRBY', KEYS[4], id, 1) end
  if stalls > max_stalls then
    local bytes = redis.call('HGET', KEYS[3], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    if bytes then redis.call('HSET', KEYS[6], id, bytes) end
    redis.call('HSET', KEYS[7], id, 'stalled: lease expired ' .. stalls .. ' times')
    redis.call('ZADD', KEYS[5], now, id)
    buried = buried + 1
  else
    redis.call('ZADD', KEYS[1], now, id)
    recovered = recovered + 1
  end
end

-- 2. Lease the due jobs, earliest first: three commands for the whole batch.
local out = { deadline, -1, recovered, buried, 0 }
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
if #due > 0 then
  local n = #due / 2
  -- A counter that starts from nothing (a new queue, or one Redis lost in a restart or a
  -- flush) restarts above every token handed out before: at now × 1000, so a worker still
  -- holding an old token cannot settle a new lease.
  local last = redis.call('INCRBY', KEYS[10], n)
  if last == n then
    last = now * 1000 + n
    redis.call('SET', KEYS[10], last)
  end
  local first = last - n + 1
  out[5] = first
  local ids, leases, tokens, owners = {}, {}, {}, {}
  for i = 1, #due, 2 do
    ids[#ids + 1] = due[i]
    leases[#leases + 1] = deadline
    leases[#leases + 1] = due[i]
    tokens[#tokens + 1] = due[i]
    tokens[#tokens + 1] = first + #ids - 1
    owners[#owners + 1] = due[i]
    owners[#owners + 1] = holder
  end
  redis.call('ZREM', KEYS[1], unpack(ids))
  redis.call('ZADD', KEYS[2], unpack(leases))
  redis.call('HSET', KEYS[8], unpack(tokens))
  redis.call('HSET', KEYS[9], unpack(owners))
  local envelopes = redis.call('HMGET', KEYS[3], unpack(ids))
  for i, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = due[2 * i]
    out[#out + 1] = envelopes[i]
  end
end

-- 3. This holder's heartbeat; heartbeats in the past belong to holders that are gone.
redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', now)
redis.call('ZADD', KEYS[11], deadline, holder)

-- 4. When to look again: the earliest due job or the earliest lease to expire.
local next_due = head_due(KEYS[1])
local lease_head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #lease_head > 0 and (next_due == nil or tonumber(lease_head[2]) < next_due) then
  next_due = tonumber(lease_head[2])
end
if next_due then out[2] = next_due end
return out
