-- The did_health_events row of an attempt is now written by the statement that completes
-- the attempt (exactly once, atomically with the completion), so nothing needs to find
-- completed attempts whose health was not yet recorded. Rows the old path had not written
-- yet are written here before the marker goes.
INSERT INTO did_health_events (did_id, call_attempt_id, disposition, duration_s, spam_flagged, at)
SELECT did_id, id, disposition, COALESCE(duration_s, 0), spam_flagged, COALESCE(ended_at, created_at)
FROM call_attempts
WHERE status = 'completed' AND health_recorded = false AND did_id IS NOT NULL AND disposition IS NOT NULL
ON CONFLICT (call_attempt_id) DO NOTHING;

DROP INDEX call_attempts_health_pending;
ALTER TABLE call_attempts DROP COLUMN health_recorded;
