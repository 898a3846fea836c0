-- The carrier's call id (`CallSid`) is found through its own table, so recording it on the
-- attempt becomes a HOT update (docs/BENCHMARKS.md, eighth session).
--
-- `call_attempts.provider_call_sid` had a unique index: the update that records the id from
-- the originate response (`originating → in_progress`) changed an indexed column, so it
-- wrote a new entry into all five indexes of `call_attempts` (two of them unique) — about
-- 0.1 ms per call, more than the whole originate update. Every attempt insert also wrote a
-- NULL entry into it. The column stays, unindexed, and the lookup by call id (a spam flag
-- naming the call by `CallSid`) and the rule that a call id belongs to one attempt move to
-- `call_sids`: one narrow insert per call, written with the id.
CREATE TABLE call_sids (
    sid             TEXT PRIMARY KEY,
    -- No foreign key: the only insert path copies the id from the `call_attempts` row it
    -- joins (migration 20261121000004 explains why the per-call statements carry none).
    call_attempt_id BIGINT NOT NULL
);
INSERT INTO call_sids (sid, call_attempt_id)
    SELECT provider_call_sid, id FROM call_attempts WHERE provider_call_sid IS NOT NULL;
ALTER TABLE call_attempts DROP CONSTRAINT call_attempts_provider_call_sid_key;
