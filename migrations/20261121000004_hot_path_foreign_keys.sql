-- Foreign keys the per-call statements no longer need (docs/BENCHMARKS.md, fourth session).
--
-- Each foreign key checked on an insert runs a `SELECT … FOR KEY SHARE` on the referenced
-- row: a lookup, and a lock written into that row (a dirtied page and a WAL record) for
-- every call. These four were redundant, because both tables have exactly one insert path,
-- which copies the values from a row whose own keys already hold them:
--
-- * `call_attempts.org_id` and `.campaign_id` are copied by the attempt insert
--   (`dialing::start_admitted`) from the contact row the same statement moves to `dialing`;
--   `contacts` keeps its foreign keys on both.
-- * `did_health_events.did_id` and `.call_attempt_id` are copied by the completion statement
--   (`Store::complete_attempt`) from the attempt row it completes; `call_attempts` keeps its
--   foreign key on `did_id`.
--
-- Nothing deletes organizations, campaigns, caller IDs or attempts (they end in a status),
-- so no cascade or restrict behaviour is lost. `call_attempts.contact_id` and `.did_id` keep
-- theirs.
ALTER TABLE call_attempts DROP CONSTRAINT call_attempts_org_id_fkey;
ALTER TABLE call_attempts DROP CONSTRAINT call_attempts_campaign_id_fkey;
ALTER TABLE did_health_events DROP CONSTRAINT did_health_events_did_id_fkey;
ALTER TABLE did_health_events DROP CONSTRAINT did_health_events_call_attempt_id_fkey;
