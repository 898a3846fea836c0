//! Text messages (product §6): the prospect claim, the atomic per-DID gap on `last_sms_at`, and
//! the forward-only status of each message.
//!
//! A tick claims, in one transaction, one due prospect (`queued → sending`), one DID whose
//! last text is at least the gap ago (`last_sms_at := now`), and writes the `sms_messages`
//! row. The DID claim is a single `UPDATE … WHERE last_sms_at <= now − gap` on a row picked
//! with `FOR UPDATE SKIP LOCKED`; Postgres re-checks the condition after taking the row lock,
//! so any number of dialer pods can race and no DID ever texts twice within the gap.

use chrono::{DateTime, Duration, Utc};
use outdial_domain::contact::Disposition;
use outdial_domain::did::CallerIdRule;
use outdial_domain::phone::E164;
use outdial_domain::sms::SmsStatus;
use outdial_domain::{CampaignId, ContactId, DidId, OrgId};
use serde::Serialize;
use sqlx::PgConnection;

use crate::contacts::CONTACT_COLUMNS;
use crate::dialing::{Claimed, ClaimedRow, SUPPRESSED, claimed};
use crate::dids::{DID_COLUMNS, Did, DidRow};
use crate::{Result, Store, StoreError, corrupt};

/// One text message to one prospect, as recorded in `sms_messages` (product §6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmsMessage {
    /// row id; jobs and callbacks name a message by its contact instead
    pub id: i64,
    /// the prospect (one message per prospect)
    pub contact_id: ContactId,
    /// the prospect's organization
    pub org_id: OrgId,
    /// the SMS campaign; its events go to `campaign:<id>`
    pub campaign_id: CampaignId,
    /// sending DID
    pub did_id: DidId,
    /// sending number
    pub from_number: E164,
    /// destination: the prospect's first number
    pub to_number: E164,
    /// the campaign's `message_body` when it was recorded
    pub body: String,
    /// forward only: `pending → submitting → queued → sending → sent → …` (product §6)
    pub status: SmsStatus,
    /// the carrier's `MessageSid`
    pub provider_sid: Option<String>,
    /// the carrier's `ErrorCode` (e.g. 30003)
    pub error_code: Option<i32>,
    /// why it failed, in words
    pub error: Option<String>,
    /// when the tick recorded it; the delivery timeout counts from it
    pub created_at: DateTime<Utc>,
    /// handed to the carrier
    pub submitted_at: Option<DateTime<Utc>>,
    /// `sent` reported
    pub sent_at: Option<DateTime<Utc>>,
    /// final status reported
    pub ended_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SmsRow {
    id: i64,
    contact_id: i64,
    org_id: i64,
    campaign_id: i64,
    did_id: i64,
    from_number: String,
    to_number: String,
    body: String,
    status: String,
    provider_sid: Option<String>,
    error_code: Option<i32>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    submitted_at: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

const SMS_COLUMNS: &str = "id, contact_id, org_id, campaign_id, did_id, from_number, to_number, body, status, \
    provider_sid, error_code, error, created_at, submitted_at, sent_at, ended_at";

impl TryFrom<SmsRow> for SmsMessage {
    type Error = StoreError;
    fn try_from(r: SmsRow) -> Result<Self> {
        Ok(Self {
            id: r.id,
            contact_id: ContactId(r.contact_id),
            org_id: OrgId(r.org_id),
            campaign_id: CampaignId(r.campaign_id),
            did_id: DidId(r.did_id),
            from_number: E164::from_stored(r.from_number).map_err(corrupt)?,
            to_number: E164::from_stored(r.to_number).map_err(corrupt)?,
            body: r.body,
            status: r.status.parse().map_err(corrupt)?,
            provider_sid: r.provider_sid,
            error_code: r.error_code,
            error: r.error,
            created_at: r.created_at,
            submitted_at: r.submitted_at,
            sent_at: r.sent_at,
            ended_at: r.ended_at,
        })
    }
}

/// Which DIDs an SMS campaign may text from: its organization's usable DIDs under `rule`
/// (product §5.5 — a usable state and a judged score ≥ the threshold; texts are not ramped,
/// [`crate::dids::Did::is_usable_on`]), restricted to `caller_ids` (E.164) when that is
/// non-empty, with at most one text per DID per `gap_ms` (product §6).
#[derive(Debug, Clone, PartialEq)]
pub struct SmsDidFilter<'a> {
    /// the campaign's organization
    pub org: OrgId,
    /// the campaign's caller IDs; empty = any
    pub caller_ids: &'a [E164],
    /// the usable-caller-ID rule's settings
    pub rule: CallerIdRule,
    /// minimum gap between two texts of one DID, ms (product §12: 15 min)
    pub gap_ms: i64,
}

/// The DIDs of [`SmsDidFilter`] (parameters `$1` org, `$2` threshold, `$3` min calls, `$4`
/// caller IDs), gap aside.
fn sms_did_where() -> String {
    format!(
        "org_id = $1 AND {usable} AND (cardinality($4::text[]) = 0 OR e164 = ANY($4))",
        usable = crate::dids::usable_did_sql("$2", "$3")
    )
}

/// The usable DIDs of an SMS campaign now: how many there are (the drip interval divides
/// the gap by this) and when the next one is free to text (`None` when one is free now or
/// none exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsDidPool {
    /// usable DIDs, free or not
    pub usable: i64,
    /// when the earliest busy DID becomes free, if none is free now
    pub next_free_at: Option<DateTime<Utc>>,
}

/// [`SmsDidPool`] of `filter` at `now`.
///
/// Errors: database failures.
pub async fn sms_did_pool(
    conn: &mut PgConnection,
    filter: &SmsDidFilter<'_>,
    now: DateTime<Utc>,
) -> Result<SmsDidPool> {
    let cutoff = now - Duration::milliseconds(filter.gap_ms);
    let (usable, free, oldest): (i64, i64, Option<DateTime<Utc>>) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), count(*) FILTER (WHERE last_sms_at IS NULL OR last_sms_at <= $5), min(last_sms_at)
             FROM dids WHERE {where_}",
            where_ = sms_did_where()
        )))
        .bind(filter.org.0)
        .bind(filter.rule.threshold)
        .bind(crate::int_param(filter.rule.min_calls, "health.min_calls")?)
        .bind(filter.caller_ids.iter().map(E164::as_str).collect::<Vec<_>>())
        .bind(cutoff)
        .fetch_one(conn)
        .await?;
    Ok(SmsDidPool {
        usable,
        next_free_at: if free > 0 {
            None
        } else {
            oldest.map(|t| t + Duration::milliseconds(filter.gap_ms))
        },
    })
}

/// Claims the least recently texting DID of `filter` that is free at `now` (its last text at
/// least the gap ago, or never) by setting its `last_sms_at` to `now`. `None` when every
/// usable DID texted within the gap. Atomic across any number of concurrent callers.
///
/// Errors: database failures.
pub async fn claim_sms_did(
    conn: &mut PgConnection,
    filter: &SmsDidFilter<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Did>> {
    let cutoff = now - Duration::milliseconds(filter.gap_ms);
    let row: Option<DidRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE dids SET last_sms_at = $6
         WHERE id = (SELECT id FROM dids WHERE {where_}
                       AND (last_sms_at IS NULL OR last_sms_at <= $5)
                     ORDER BY last_sms_at NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED)
           AND (last_sms_at IS NULL OR last_sms_at <= $5)
         RETURNING {DID_COLUMNS}",
        where_ = sms_did_where()
    )))
    .bind(filter.org.0)
    .bind(filter.rule.threshold)
    .bind(crate::int_param(filter.rule.min_calls, "health.min_calls")?)
    .bind(
        filter
            .caller_ids
            .iter()
            .map(E164::as_str)
            .collect::<Vec<_>>(),
    )
    .bind(cutoff)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// Moves one due prospect of SMS campaign `campaign` whose zone key is in `zones` from
/// `queued` to `sending` (counting the attempt), earliest due first, skipping rows another
/// transaction holds — only while the campaign is dialing. `None` when none is due.
///
/// Errors: database failures.
pub async fn claim_sms_prospect(
    conn: &mut PgConnection,
    campaign: CampaignId,
    zones: &[String],
    now: DateTime<Utc>,
) -> Result<Option<Claimed>> {
    let row: Option<ClaimedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE contacts SET status = 'sending', attempt_count = attempt_count + 1, updated_at = $2
         WHERE id = (SELECT id FROM contacts WHERE campaign_id = $1 AND status = 'queued'
                       AND retry_after <= $2 AND timezone = ANY($3)
                       AND EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND status = 'dialing')
                     ORDER BY retry_after, id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING {CONTACT_COLUMNS}, {SUPPRESSED}"
    )))
    .bind(campaign.0)
    .bind(now)
    .bind(zones)
    .fetch_optional(conn)
    .await?;
    claimed(row)
}

/// Gives a claimed prospect back (`sending → queued`, attempt uncounted) when no DID is
/// free; same transaction as the claim.
///
/// Errors: database failures.
pub async fn unclaim_sms_prospect(conn: &mut PgConnection, contact: ContactId) -> Result<()> {
    sqlx::query(
        "UPDATE contacts SET status = 'queued', attempt_count = attempt_count - 1
         WHERE id = $1 AND status = 'sending'",
    )
    .bind(contact.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// A message to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSms {
    /// the claimed prospect (one message per prospect)
    pub contact_id: ContactId,
    /// the prospect's organization
    pub org_id: OrgId,
    /// the SMS campaign texting it
    pub campaign_id: CampaignId,
    /// the claimed DID
    pub did_id: DidId,
    /// the claimed DID's number (`From`)
    pub from_number: E164,
    /// destination: the prospect's first number
    pub to_number: E164,
    /// the campaign's `message_body`
    pub body: String,
}

/// Records message `m` (status `pending`). A prospect has one message: recording it again
/// returns the existing one.
///
/// Errors: database failures.
pub async fn insert_sms(
    conn: &mut PgConnection,
    m: &NewSms,
    now: DateTime<Utc>,
) -> Result<SmsMessage> {
    let row: SmsRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH ins AS (
             INSERT INTO sms_messages (contact_id, org_id, campaign_id, did_id, from_number, to_number, body, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (contact_id) DO NOTHING RETURNING {SMS_COLUMNS})
         SELECT {SMS_COLUMNS} FROM ins
         UNION ALL SELECT {SMS_COLUMNS} FROM sms_messages WHERE contact_id = $1
         LIMIT 1"
    )))
    .bind(m.contact_id.0)
    .bind(m.org_id.0)
    .bind(m.campaign_id.0)
    .bind(m.did_id.0)
    .bind(m.from_number.as_str())
    .bind(m.to_number.as_str())
    .bind(&m.body)
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// A status reported for a message, with what came with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsUpdate<'a> {
    /// the new status
    pub status: SmsStatus,
    /// the carrier's `MessageSid`, if known
    pub sid: Option<&'a str>,
    /// the carrier's `ErrorCode`
    pub error_code: Option<i32>,
    /// why it failed, in words
    pub error: Option<&'a str>,
    /// the prospect's disposition when it is not the one the status implies (`timeout`,
    /// `invalid_number`)
    pub disposition: Option<Disposition>,
}

impl<'a> SmsUpdate<'a> {
    /// `status` with nothing else.
    pub fn status(status: SmsStatus) -> Self {
        Self {
            status,
            sid: None,
            error_code: None,
            error: None,
            disposition: None,
        }
    }
}

impl Store {
    /// Every message of `campaign`, oldest first.
    ///
    /// Errors: database failures.
    pub async fn campaign_sms(&self, campaign: CampaignId) -> Result<Vec<SmsMessage>> {
        let rows: Vec<SmsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SMS_COLUMNS} FROM sms_messages WHERE campaign_id = $1 ORDER BY created_at, id"
        )))
        .bind(campaign.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// `pending → submitting` for the message of `contact`: the point of no return before
    /// the carrier is called. `None` when it is not pending (already handed over, or
    /// ended): the caller must not send.
    ///
    /// Errors: database failures.
    pub async fn begin_sms_submit(
        &self,
        contact: ContactId,
        now: DateTime<Utc>,
    ) -> Result<Option<SmsMessage>> {
        let row: Option<SmsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE sms_messages SET status = 'submitting', submitted_at = $2
             WHERE contact_id = $1 AND status = 'pending' RETURNING {SMS_COLUMNS}"
        )))
        .bind(contact.0)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    /// `submitting → pending` after a transient carrier failure, so the retried job sends.
    ///
    /// Errors: database failures.
    pub async fn retry_sms_submit(&self, contact: ContactId) -> Result<()> {
        sqlx::query("UPDATE sms_messages SET status = 'pending' WHERE contact_id = $1 AND status = 'submitting'")
            .bind(contact.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves the message of `contact` to `u.status` if that is forward of its current
    /// status ([`SmsStatus::advances_to`]), recording the sid, error code and error when
    /// given, and the prospect to the status and disposition the message implies
    /// ([`SmsStatus::prospect`]; `u.disposition` overrides the latter) — one statement, so
    /// two receipts racing for one message move it forward once. Returns the message
    /// after the change; `None` when the status is not forward (a duplicate or late
    /// callback).
    ///
    /// Errors: [`StoreError::NotFound`] without a message; database failures.
    pub async fn advance_sms(
        &self,
        contact: ContactId,
        u: &SmsUpdate<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<SmsMessage>> {
        let (contact_status, implied) = u.status.prospect();
        let before: Vec<&str> = SmsStatus::ALL
            .into_iter()
            .filter(|s| s.advances_to(u.status))
            .map(SmsStatus::as_str)
            .collect();
        let row: Option<SmsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH m AS (
                 UPDATE sms_messages SET status = $2,
                     provider_sid = COALESCE(provider_sid, $3),
                     error_code = COALESCE($4, error_code), error = COALESCE($5, error),
                     sent_at = CASE WHEN $2 = 'sent' THEN $6 ELSE sent_at END,
                     ended_at = CASE WHEN $2 IN ('delivered', 'undelivered', 'failed') THEN $6 ELSE ended_at END
                 WHERE contact_id = $1 AND status = ANY($7) RETURNING {SMS_COLUMNS}),
             c AS (
                 UPDATE contacts SET status = $8, disposition = COALESCE($9, disposition), updated_at = $6
                 WHERE id = $1 AND status IN ('sending', 'sent') AND EXISTS (SELECT 1 FROM m))
             SELECT {SMS_COLUMNS} FROM m"
        )))
        .bind(contact.0)
        .bind(u.status.as_str())
        .bind(u.sid)
        .bind(u.error_code)
        .bind(u.error)
        .bind(now)
        .bind(&before)
        .bind(contact_status.as_str())
        .bind(u.disposition.or(implied).map(Disposition::as_str))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(r.try_into()?)),
            None => {
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM sms_messages WHERE contact_id = $1)",
                )
                .bind(contact.0)
                .fetch_one(&self.pool)
                .await?;
                if exists {
                    Ok(None)
                } else {
                    Err(StoreError::not_found("SMS message of contact", contact))
                }
            }
        }
    }

    /// Prospects whose message is not final and was recorded before `before`, oldest first,
    /// with the recording time and whether it is still `pending`: maintenance re-enqueues
    /// the send job of a pending one and the delivery timeout of every one, in case Redis
    /// lost them.
    ///
    /// Errors: database failures.
    pub async fn stalled_sms(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(ContactId, DateTime<Utc>, bool)>> {
        let rows: Vec<(i64, DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT contact_id, created_at, status = 'pending' FROM sms_messages
             WHERE status NOT IN ('delivered', 'undelivered', 'failed') AND created_at < $1
             ORDER BY created_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(c, t, pending)| (ContactId(c), t, pending))
            .collect())
    }
}
