-- Text messages (product §6): one per prospect of an SMS campaign. The row is written in the
-- same transaction that claims the prospect and the sending DID's `last_sms_at`, before the
-- carrier is called; `contact_id` is its idempotency key.
CREATE TABLE sms_messages (
    id            BIGSERIAL PRIMARY KEY,
    contact_id    BIGINT NOT NULL UNIQUE REFERENCES contacts (id),
    org_id        BIGINT NOT NULL REFERENCES organizations (id),
    campaign_id   BIGINT NOT NULL REFERENCES campaigns (id),
    did_id        BIGINT NOT NULL REFERENCES dids (id),
    from_number   TEXT NOT NULL,
    to_number     TEXT NOT NULL,
    body          TEXT NOT NULL,
    -- pending → submitting → queued → sending → sent → delivered | undelivered | failed
    -- (outdial_domain::sms::SmsStatus); only ever moves forward.
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'submitting', 'queued', 'sending', 'sent',
                                    'delivered', 'undelivered', 'failed')),
    provider_sid  TEXT UNIQUE,
    error_code    INTEGER,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    submitted_at  TIMESTAMPTZ,
    sent_at       TIMESTAMPTZ,
    ended_at      TIMESTAMPTZ
);
CREATE INDEX sms_messages_open ON sms_messages (created_at)
    WHERE status NOT IN ('delivered', 'undelivered', 'failed');
CREATE INDEX sms_messages_did ON sms_messages (did_id, created_at);

-- The SMS DID claim looks for an organization's DIDs by when they last texted.
CREATE INDEX dids_org_last_sms ON dids (org_id, last_sms_at);

-- A spam flag raised on a call after it ended (product §7: `POST /dids/:id/spam-flags`), kept
-- with who raised it; the flag itself lives on the attempt and its health event.
CREATE TABLE spam_flags (
    id              BIGSERIAL PRIMARY KEY,
    did_id          BIGINT NOT NULL REFERENCES dids (id),
    call_attempt_id BIGINT NOT NULL UNIQUE REFERENCES call_attempts (id),
    source          TEXT NOT NULL,
    note            TEXT,
    at              TIMESTAMPTZ NOT NULL
);
