-- Fewer index entries written per contact status change (docs/BENCHMARKS.md, eighth session).
--
-- A contact changes status three times per call (admitted `queued → locked`, started
-- `locked → dialing`, ended `dialing → queued | completed | …`). None of these updates can be
-- HOT, because `status` is in index predicates, so each one writes an entry into *every* full
-- index of `contacts` and into every partial index whose predicate the new row satisfies.
-- Two full indexes were written on each of them for queries that partial indexes serve:
--
-- * `contacts_campaign_status (campaign_id, status)` served counts by status and "is any
--   contact open" per campaign. Those now read the partial indexes below, one per status
--   group: queued (`contacts_campaign_due`), in progress (`contacts_active`), finished
--   (`contacts_campaign_finished`, written once in a contact's life).
-- * `contacts_campaign_phone`, the unique expression index that kept a campaign from holding
--   the same primary number twice (product §11), also evaluated `phone_numbers[1]` and checked
--   uniqueness on every status change. The rule now lives in `campaign_numbers`, written once
--   per imported contact and never updated.
--
-- Per call the index entries written drop from 4 + 4 + 4 (3 when the contact finishes) to
-- 3 + 2 + 2, primary key included. Measured on 1,000 contacts of the dispatch benchmark, idle
-- server, median of six: the admission update 24.0 → 13.7 ms.
DROP INDEX contacts_campaign_status;
DROP INDEX contacts_active;
-- In progress: admitted, in a call, or an SMS being sent or awaiting delivery. Scanned whole
-- by each dispatch cycle (product §4: active = locked or dialing); by organization and campaign
-- for "is any contact open".
CREATE INDEX contacts_active ON contacts (org_id, campaign_id, status)
    WHERE status IN ('locked', 'dialing', 'sending', 'sent');
-- Admitted contacts of a campaign, oldest admission first: the next one a tick starts. By
-- organization first: a compare-and-set on one admitted contact (`WHERE id = $1 AND status =
-- 'locked' AND org_id = $n`) may be planned on this small index rather than the primary key,
-- and then reads only that organization's slice instead of every admitted contact.
CREATE INDEX contacts_admitted ON contacts (org_id, campaign_id, locked_at, id) WHERE status = 'locked';
-- Finished contacts of a campaign, for counts by status.
CREATE INDEX contacts_campaign_finished ON contacts (campaign_id, status)
    WHERE status IN ('completed', 'exhausted', 'failed', 'cancelled', 'delivered');

-- The primary numbers each campaign holds (product §11: an import skips a contact whose
-- primary number is already in the campaign).
CREATE TABLE campaign_numbers (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    phone       TEXT NOT NULL,
    PRIMARY KEY (campaign_id, phone)
);
-- (Distinct, and only contacts with a number: the unique index allowed one NULL primary
-- per row, which an import never wrote.)
INSERT INTO campaign_numbers (campaign_id, phone)
    SELECT DISTINCT campaign_id, phone_numbers[1] FROM contacts
    WHERE campaign_id IS NOT NULL AND phone_numbers[1] IS NOT NULL;
DROP INDEX contacts_campaign_phone;
