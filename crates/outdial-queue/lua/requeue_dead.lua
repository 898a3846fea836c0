-- requeue_dead: move a dead letter back to waiting (operator retry).
-- KEYS[1] scheduled  KEYS[2] active  KEYS[3] jobs  KEYS[4] dead  KEYS[5] dead-jobs  KEYS[6] dead-errors
-- ARGV[1] now (ms)  ARGV[2] id  ARGV[3] envelope to store ('' keeps the dead one)
-- Returns 1 requeued, 0 no such dead letter, -1 a live job with that id exists.
local id = ARGV[2]
if not redis.call('ZSCORE', KEYS[4], id) then return 0 end
if redis.call('ZSCORE', KEYS[1], id) or redis.call('ZSCORE', KEYS[2], id) then return -1 end
local bytes = ARGV[3]
if bytes == '' then bytes = redis.call('HGET', KEYS[5], id) end
redis.call('ZREM', KEYS[4], id)
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], id)
redis.call('HSET', KEYS[3], id, bytes)
redis.call('ZADD', KEYS[1], ARGV[1], id)
return 1
