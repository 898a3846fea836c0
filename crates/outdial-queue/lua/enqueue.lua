-- enqueue: add a batch of jobs in one round trip.
-- KEYS[1] scheduled  KEYS[2] active  KEYS[3] jobs          (all share the queue's hash tag)
-- ARGV[1] wake channel
-- ARGV[2..] groups of 4: id, due (ms), envelope bytes, mode ('S' skip duplicate, 'E' keep earliest)
-- Returns one integer per job: 1 added, 0 duplicate, 2 moved earlier.
local old_head = head_due(KEYS[1])
local earliest
local results = {}
for i = 2, #ARGV, 4 do
  local due = tonumber(ARGV[i + 1])
  local r = add_job(KEYS[1], KEYS[2], KEYS[3], ARGV[i], due, ARGV[i + 2], ARGV[i + 3])
  if r ~= 0 and (earliest == nil or due < earliest) then earliest = due end
  results[#results + 1] = r
end
wake_if_new_head(ARGV[1], old_head, earliest)
return results
