-- settle: finish a batch of leased jobs in one round trip.
-- KEYS[1] scheduled  KEYS[2] active  KEYS[3] jobs  KEYS[4] stalls
-- KEYS[5] dead  KEYS[6] dead-jobs  KEYS[7] dead-errors  KEYS[8] leases  KEYS[9] lease-holders
-- ARGV[1] now (ms)  ARGV[2] wake channel, then one group per item (lease = the token
-- reserve handed out; renewals do not change it):
--   'A', id, lease, n, then n successor groups (id, due, envelope, mode), then m and m ids
--        ack: remove every trace of the job, enqueue its successors and withdraw the m
--        other jobs (each only while scheduled: one that is active is left to its holder)
--        atomically
--   'R', id, lease, due, envelope      retry: store the new envelope, reschedule at due
--   'D', id, lease, error, envelope    dead-letter (envelope '' keeps the stored one)
--   'B', id, lease                     hand back: due now, not counted as a stall
-- An item whose lease no longer matches (expired and re-leased, or already settled) is
-- skipped entirely, successors included: the current holder will settle it.
-- Returns one integer per item: 1 settled, 0 lease lost.
local now = tonumber(ARGV[1])
local old_head = head_due(KEYS[1])
local earliest
local results = {}
local i = 3
while i <= #ARGV do
  local op, id, lease = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local held = tonumber(redis.call('HGET', KEYS[8], id)) == lease
  if held then
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[8], id)
    redis.call('HDEL', KEYS[9], id)
  end
  results[#results + 1] = held and 1 or 0
  if op == 'A' then
    local n = tonumber(ARGV[i + 3])
    i = i + 4
    if held then
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[4], id)
      for _ = 1, n do
        local due = tonumber(ARGV[i + 1])
        local r = add_job(KEYS[1], KEYS[2], KEYS[3], ARGV[i], due, ARGV[i + 2], ARGV[i + 3])
        if r ~= 0 and (earliest == nil or due < earliest) then earliest = due end
        i = i + 4
      end
    else
      i = i + 4 * n
    end
    local m = tonumber(ARGV[i])
    if held then
      for j = i + 1, i + m do
        if redis.call('ZREM', KEYS[1], ARGV[j]) == 1 then
          redis.call('HDEL', KEYS[3], ARGV[j])
          redis.call('HDEL', KEYS[4], ARGV[j])
        end
      end
    end
    i = i + 1 + m
  elseif op == 'R' then
    if held then
      local due = tonumber(ARGV[i + 3])
      redis.call('HSET', KEYS[3], id, ARGV[i + 4])
      redis.call('ZADD', KEYS[1], due, id)
      if earliest == nil or due < earliest then earliest = due end
    end
    i = i + 5
  elseif op == 'D' then
    if held then
      local bytes = ARGV[i + 4]
      if bytes == '' then bytes = redis.call('HGET', KEYS[3], id) end
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[4], id)
      if bytes then redis.call('HSET', KEYS[6], id, bytes) end
      redis.call('HSET', KEYS[7], id, ARGV[i + 3])
      redis.call('ZADD', KEYS[5], now, id)
    end
    i = i + 5
  elseif op == 'B' then
    if held then
      redis.call('ZADD', KEYS[1], now, id)
      if earliest == nil or now < earliest then earliest = now end
    end
    i = i + 3
  else
    return redis.error_reply('settle: unknown op ' .. tostring(op))
  end
end
wake_if_new_head(ARGV[2], old_head, earliest)
return results
