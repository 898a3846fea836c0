-- The attempt insert no longer checks its contact by foreign key (docs/BENCHMARKS.md, eighth
-- session), for the reason migration 20261121000004 gives for the others: the only insert
-- path (`dialing::start_admitted`) copies `contact_id` from the contact row the same
-- statement moves to `dialing`, so it exists by construction, and nothing deletes contacts.
-- The check cost ~0.045 ms of the ~0.27 ms start statement (a lookup and a row lock).
ALTER TABLE call_attempts DROP CONSTRAINT call_attempts_contact_id_fkey;
