-- Each of a contact's numbers has its own time-zone key (docs/product.md §5.2): the zones that
-- must all be open for that number to be dialed — its area-code zone(s) and the zone the
-- upload stated, if any. `timezone` stays the key of the number the contact's next attempt
-- dials (the dispatch cycle's zone filter reads it through the partial indexes); the
-- completion that moves a contact to its next number moves `timezone` with it.
--
-- Contacts imported before this migration had one key for all their numbers: it is copied to
-- every number, so they are dialed as before (their keys are not recomputed here; the NANP
-- table lives in the application).
ALTER TABLE contacts ADD COLUMN phone_timezones TEXT[];
UPDATE contacts SET phone_timezones = array_fill(timezone, ARRAY[cardinality(phone_numbers)]);
ALTER TABLE contacts ALTER COLUMN phone_timezones SET NOT NULL;
ALTER TABLE contacts ADD CONSTRAINT contacts_phone_timezones_per_number
    CHECK (cardinality(phone_timezones) = cardinality(phone_numbers));
