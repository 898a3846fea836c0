-- Shared helpers, prepended to enqueue.lua, reserve.lua and settle.lua at build time.
-- Job states: a job id is in exactly one of
--   scheduled (ZSET, score = due ms; "waiting" once due, "delayed" before),
--   active    (ZSET, score = lease deadline ms; the lease token, a fencing number that
--              renewal does not change, is in the `leases` hash),
--   dead      (ZSET, score = time of death ms), or nowhere (acked: nothing left behind).

-- Adds job `id` due at `due` (ms) with envelope `bytes`, unless a job with that id is
-- already scheduled or active (deduplication by id, product §3). mode 'E' (keep earliest) moves
-- an already scheduled job earlier when `due` is sooner; its envelope is kept.
-- Returns 1 added, 0 duplicate, 2 moved earlier.
local function add_job(k_scheduled, k_active, k_jobs, id, due, bytes, mode)
  local current = redis.call('ZSCORE', k_scheduled, id)
  if current then
    if mode == 'E' and tonumber(current) > due then
      redis.call('ZADD', k_scheduled, due, id)
      return 2
    end
    return 0
  end
  if redis.call('ZSCORE', k_active, id) then
    return 0
  end
  redis.call('HSET', k_jobs, id, bytes)
  redis.call('ZADD', k_scheduled, due, id)
  return 1
end

-- The due time of the earliest scheduled job, or nil.
local function head_due(k_scheduled)
  local head = redis.call('ZRANGE', k_scheduled, 0, 0, 'WITHSCORES')
  if #head == 0 then return nil end
  return tonumber(head[2])
end

-- Wakes idle workers when a job became the new earliest one: they sleep until the head's
-- due time, so only a new head changes what they wait for.
local function wake_if_new_head(channel, old_head, earliest_added)
  if earliest_added and (old_head == nil or earliest_added < old_head) then
    redis.call('PUBLISH', channel, earliest_added)
  end
end
