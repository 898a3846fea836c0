-- outdial schema. Postgres is the source of truth (product §3): everything in Redis can be
-- rebuilt from these tables. Every timestamp is written from the injected clock, never now().

CREATE TABLE organizations (
    id                BIGSERIAL PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    -- product §4: simultaneous calls (contacts locked or dialing); default 10, 1..=10000.
    concurrency_limit INTEGER NOT NULL DEFAULT 10 CHECK (concurrency_limit BETWEEN 1 AND 10000),
    created_at        TIMESTAMPTZ NOT NULL
);

-- Bearer tokens (product §10): stored as SHA-256 of the secret, scoped, one organization each.
CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    org_id       BIGINT NOT NULL REFERENCES organizations (id),
    name         TEXT NOT NULL,
    token_sha256 BYTEA NOT NULL UNIQUE,
    scopes       TEXT[] NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);

CREATE TABLE campaigns (
    id                            BIGSERIAL PRIMARY KEY,
    org_id                        BIGINT NOT NULL REFERENCES organizations (id),
    name                          TEXT NOT NULL,
    channel                       TEXT NOT NULL CHECK (channel IN ('voice', 'sms')),
    status                        TEXT NOT NULL DEFAULT 'created'
                                  CHECK (status IN ('created', 'dialing', 'paused', 'completed', 'cancelled')),
    -- Higher dials first among one organization's campaigns (product §5 step 4).
    priority                      INTEGER NOT NULL DEFAULT 0,
    calls_per_second              DOUBLE PRECISION NOT NULL DEFAULT 1
                                  CHECK (calls_per_second > 0 AND calls_per_second <= 1000),
    max_attempts_per_phone_number INTEGER NOT NULL DEFAULT 2 CHECK (max_attempts_per_phone_number BETWEEN 1 AND 20),
    retry_delay_ms                BIGINT NOT NULL DEFAULT 3600000 CHECK (retry_delay_ms >= 0),
    voicemail_drop                BOOLEAN NOT NULL DEFAULT false,
    retry_busy                    BOOLEAN NOT NULL DEFAULT false,
    -- Calling window in the contact's local time, already clipped to the legal window.
    window_start                  TIME NOT NULL,
    window_end                    TIME NOT NULL,
    window_days                   SMALLINT NOT NULL DEFAULT 127 CHECK (window_days BETWEEN 1 AND 127),
    -- Fallback zone for contacts whose own zone is unknown (product §5.2).
    timezone                      TEXT NOT NULL DEFAULT 'America/Los_Angeles',
    -- Restricts caller IDs to these E.164 numbers when non-empty (product §5.5).
    caller_ids                    TEXT[] NOT NULL DEFAULT '{}',
    sip_pool                      TEXT NOT NULL DEFAULT 'campaign',
    -- SMS body (product §6); NULL for voice.
    message_body                  TEXT,
    created_at                    TIMESTAMPTZ NOT NULL,
    started_at                    TIMESTAMPTZ,
    finished_at                   TIMESTAMPTZ,
    updated_at                    TIMESTAMPTZ NOT NULL
);
CREATE INDEX campaigns_running ON campaigns (status) WHERE status = 'dialing';

-- Every status change with its cause (product §8).
CREATE TABLE campaign_transitions (
    id          BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    command     TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT,
    at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX campaign_transitions_campaign ON campaign_transitions (campaign_id, id);

-- One contact file (product §11): ties contacts to it and keeps the validation report.
CREATE TABLE uploads (
    id          BIGSERIAL PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES organizations (id),
    campaign_id BIGINT REFERENCES campaigns (id),
    filename    TEXT NOT NULL,
    rows_read   INTEGER NOT NULL,
    imported    INTEGER NOT NULL,
    malformed   INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL,
    suppressed  INTEGER NOT NULL,
    -- [{row, error}] for the rejected rows (first 1000).
    rejections  JSONB NOT NULL DEFAULT '[]',
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE contacts (
    id            BIGSERIAL PRIMARY KEY,
    org_id        BIGINT NOT NULL REFERENCES organizations (id),
    -- NULL for direct API calls: they bypass windows and sort first (product §5).
    campaign_id   BIGINT REFERENCES campaigns (id),
    upload_id     BIGINT REFERENCES uploads (id),
    external_id   TEXT,
    name          TEXT,
    -- E.164 numbers in dialing order (product §5.4).
    phone_numbers TEXT[] NOT NULL,
    -- IANA zone, or several joined by '&' when the number's prefix spans zones.
    timezone      TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'locked', 'dialing', 'completed', 'exhausted', 'failed',
                                    'cancelled', 'sending', 'sent', 'delivered')),
    -- Outcome of the last attempt (voice disposition or SMS delivery result).
    disposition   TEXT,
    -- Why a contact ended cancelled or failed without a call ('dnc', 'campaign_cancelled', …).
    status_reason TEXT,
    -- Attempts made so far = index of the next attempt.
    attempt_count INTEGER NOT NULL DEFAULT 0,
    -- Due when retry_after <= now: the import time at first, then the retry time.
    retry_after   TIMESTAMPTZ NOT NULL,
    -- When a dispatch cycle admitted it (status locked); stale after the threshold.
    locked_at     TIMESTAMPTZ,
    sip_pool      TEXT NOT NULL DEFAULT 'campaign',
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
-- Due contacts of a campaign in dialing order.
CREATE INDEX contacts_campaign_due ON contacts (campaign_id, retry_after, id) WHERE status = 'queued';
-- Due direct calls.
CREATE INDEX contacts_direct_due ON contacts (retry_after, id) WHERE status = 'queued' AND campaign_id IS NULL;
-- Active calls per organization (product §4) and per campaign.
CREATE INDEX contacts_active ON contacts (org_id, campaign_id, status) WHERE status IN ('locked', 'dialing');
CREATE INDEX contacts_campaign_status ON contacts (campaign_id, status);
-- A campaign never holds the same primary number twice (product §11 dedup against the campaign).
CREATE UNIQUE INDEX contacts_campaign_phone ON contacts (campaign_id, (phone_numbers[1])) WHERE campaign_id IS NOT NULL;

-- Distinct contact time zones of each campaign, so a dispatch cycle computes the eligible
-- zones without scanning contacts.
CREATE TABLE campaign_timezones (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    timezone    TEXT NOT NULL,
    PRIMARY KEY (campaign_id, timezone)
);

CREATE TABLE dids (
    id                BIGSERIAL PRIMARY KEY,
    org_id            BIGINT NOT NULL REFERENCES organizations (id),
    e164              TEXT NOT NULL UNIQUE,
    state             TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('warming', 'active', 'cooling', 'burned')),
    health_score      DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    health_components JSONB,
    scored_calls      INTEGER NOT NULL DEFAULT 0,
    -- Only calls at or after this count toward the score (set when a cooldown ends).
    scored_since      TIMESTAMPTZ,
    last_call_at      TIMESTAMPTZ,
    last_sms_at       TIMESTAMPTZ,
    cooldown_until    TIMESTAMPTZ,
    warming_until     TIMESTAMPTZ,
    -- Calls taken since warming began (the ramp allowance caps it).
    warming_calls     INTEGER NOT NULL DEFAULT 0,
    state_changed_at  TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX dids_org_state ON dids (org_id, state);

CREATE TABLE call_attempts (
    id                BIGSERIAL PRIMARY KEY,
    contact_id        BIGINT NOT NULL REFERENCES contacts (id),
    -- Idempotency key with contact_id: a retried job never places a second call (product §5.6).
    attempt_index     INTEGER NOT NULL,
    org_id            BIGINT NOT NULL REFERENCES organizations (id),
    campaign_id       BIGINT REFERENCES campaigns (id),
    did_id            BIGINT REFERENCES dids (id),
    from_number       TEXT NOT NULL,
    to_number         TEXT NOT NULL,
    channel_pool      TEXT NOT NULL,
    -- pending → originating → in_progress → completed
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'originating', 'in_progress', 'completed')),
    disposition       TEXT,
    provider_call_sid TEXT UNIQUE,
    carrier_status    TEXT,
    answered_by       TEXT,
    duration_s        INTEGER,
    spam_flagged      BOOLEAN NOT NULL DEFAULT false,
    error             TEXT,
    -- 'webhook', 'timeout' or 'originate'
    completed_by      TEXT,
    health_recorded   BOOLEAN NOT NULL DEFAULT false,
    created_at        TIMESTAMPTZ NOT NULL,
    originated_at     TIMESTAMPTZ,
    ended_at          TIMESTAMPTZ,
    UNIQUE (contact_id, attempt_index)
);
CREATE INDEX call_attempts_open ON call_attempts (created_at) WHERE status <> 'completed';
CREATE INDEX call_attempts_campaign ON call_attempts (campaign_id, created_at);
CREATE INDEX call_attempts_health_pending ON call_attempts (ended_at) WHERE status = 'completed' AND health_recorded = false;

CREATE TABLE did_health_events (
    id              BIGSERIAL PRIMARY KEY,
    did_id          BIGINT NOT NULL REFERENCES dids (id),
    call_attempt_id BIGINT UNIQUE REFERENCES call_attempts (id),
    disposition     TEXT NOT NULL,
    duration_s      INTEGER NOT NULL,
    spam_flagged    BOOLEAN NOT NULL DEFAULT false,
    at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX did_health_events_recent ON did_health_events (did_id, at DESC, id DESC);

-- DNC / suppression list per organization (product §5.1).
CREATE TABLE suppressions (
    id         BIGSERIAL PRIMARY KEY,
    org_id     BIGINT NOT NULL REFERENCES organizations (id),
    phone      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT 'dnc',
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, phone)
);

-- Latest aggregate per campaign, written by outdial-stats (product §9).
CREATE TABLE campaign_stats (
    campaign_id BIGINT PRIMARY KEY REFERENCES campaigns (id),
    snapshot    JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
