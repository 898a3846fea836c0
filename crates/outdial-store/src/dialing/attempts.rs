//! Call attempts (product §5.6): the row recorded before the carrier is called, the point of no
//! return before originating, the carrier's call ids, and the reads of attempts.

use chrono::{DateTime, Utc};
use outdial_domain::contact::{AttemptStatus, CompletedBy, Disposition};
use outdial_domain::phone::E164;
use outdial_domain::{AttemptId, CampaignId, ContactId, DidId, OrgId};
use serde::Serialize;
use sqlx::PgConnection;

use crate::{ASYNC_COMMIT, Result, Store, StoreError, corrupt, parse_stored};

/// A call attempt (product §5.6, §5.7).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallAttempt {
    /// row id; `originate:<id>`, `timeout:<id>` and callbacks name it
    pub id: AttemptId,
    /// the contact it calls
    pub contact_id: ContactId,
    /// 0-based attempt index (idempotency key with the contact)
    pub attempt_index: i32,
    /// the contact's organization
    pub org_id: OrgId,
    /// the contact's campaign (`None` for a direct call)
    pub campaign_id: Option<CampaignId>,
    /// the caller ID it calls from
    pub did_id: Option<DidId>,
    /// caller ID number
    pub from_number: E164,
    /// dialed number
    pub to_number: E164,
    /// SIP pool holding its channel
    pub channel_pool: String,
    /// where it is: pending → originating → in progress → completed
    pub status: AttemptStatus,
    /// its outcome once completed
    pub disposition: Option<Disposition>,
    /// carrier call id (`CallSid`)
    pub provider_call_sid: Option<String>,
    /// carrier's last `CallStatus`
    pub carrier_status: Option<String>,
    /// carrier's answering-machine verdict (`AnsweredBy`)
    pub answered_by: Option<String>,
    /// talk time, s
    pub duration_s: Option<i32>,
    /// reported as spam (product §7 spam-clean component)
    pub spam_flagged: bool,
    /// what went wrong, in words, for failures
    pub error: Option<String>,
    /// what ended it: the final callback, the timeout or an originate failure
    pub completed_by: Option<CompletedBy>,
    /// when it was recorded (= the start of the attempt)
    pub created_at: DateTime<Utc>,
    /// when the carrier was called
    pub originated_at: Option<DateTime<Utc>>,
    /// when it completed (injected clock)
    pub ended_at: Option<DateTime<Utc>>,
}

/// A `call_attempts` row as stored ([`ATTEMPT_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(super) struct CallAttemptRow {
    id: i64,
    contact_id: i64,
    attempt_index: i32,
    org_id: i64,
    campaign_id: Option<i64>,
    did_id: Option<i64>,
    from_number: String,
    to_number: String,
    channel_pool: String,
    status: String,
    disposition: Option<String>,
    provider_call_sid: Option<String>,
    carrier_status: Option<String>,
    answered_by: Option<String>,
    duration_s: Option<i32>,
    spam_flagged: bool,
    error: Option<String>,
    completed_by: Option<String>,
    created_at: DateTime<Utc>,
    originated_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

impl TryFrom<CallAttemptRow> for CallAttempt {
    type Error = StoreError;
    fn try_from(r: CallAttemptRow) -> Result<Self> {
        Ok(Self {
            id: AttemptId(r.id),
            contact_id: ContactId(r.contact_id),
            attempt_index: r.attempt_index,
            org_id: OrgId(r.org_id),
            campaign_id: r.campaign_id.map(CampaignId),
            did_id: r.did_id.map(DidId),
            from_number: E164::from_stored(r.from_number).map_err(corrupt)?,
            to_number: E164::from_stored(r.to_number).map_err(corrupt)?,
            channel_pool: r.channel_pool,
            status: r.status.parse().map_err(corrupt)?,
            disposition: parse_stored(r.disposition)?,
            provider_call_sid: r.provider_call_sid,
            carrier_status: r.carrier_status,
            answered_by: r.answered_by,
            duration_s: r.duration_s,
            spam_flagged: r.spam_flagged,
            error: r.error,
            completed_by: parse_stored(r.completed_by)?,
            created_at: r.created_at,
            originated_at: r.originated_at,
            ended_at: r.ended_at,
        })
    }
}

impl CallAttempt {
    /// Its channel holder id (`contact:<contact>:<attempt_index>`).
    pub fn holder(&self) -> String {
        outdial_domain::contact::channel_holder(self.contact_id, self.attempt_index)
    }
}

pub(super) const ATTEMPT_COLUMNS: &str = "id, contact_id, attempt_index, org_id, campaign_id, did_id, from_number, to_number, channel_pool, \
    status, disposition, provider_call_sid, carrier_status, answered_by, duration_s, spam_flagged, error, completed_by, \
    created_at, originated_at, ended_at";

/// [`ATTEMPT_COLUMNS`], each qualified with `call_attempts.` (for statements that join
/// tables sharing column names).
pub(super) fn qualified_attempt_columns() -> String {
    ATTEMPT_COLUMNS
        .split(',')
        .map(|c| format!("call_attempts.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An attempt to record before calling the carrier (product §5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    /// the admitted contact, moved `locked → dialing` with the insert
    pub contact_id: ContactId,
    /// attempt index = the contact's attempt_count
    pub attempt_index: i32,
    /// organization (the contact's; the attempt row copies organization and campaign from
    /// the contact row itself)
    pub org_id: OrgId,
    /// the chosen caller ID; its `last_call_at` (and ramp count) is stamped
    pub did_id: DidId,
    /// caller ID number
    pub from_number: E164,
    /// dialed number
    pub to_number: E164,
    /// pool of the channel the contact holds (released at completion)
    pub channel_pool: String,
}

/// Starts admitted contact `a.contact_id`: moves it `locked → dialing` and records the
/// attempt row — the idempotency key (contact, attempt index) — in one statement, committed
/// before the carrier is called (product §5.6). The same statement records the call on its
/// caller ID: last call time (least-recently-used order) and, while warming, one more call
/// of the ramp (product §7).
///
/// A compare-and-set: nothing happens and `None` is returned when the contact is no longer
/// `locked` with attempt count `a.attempt_index` (swept back to queued, paused, cancelled,
/// or started already by a job that ran twice) — so a contact is never started twice.
///
/// The attempt's organization and campaign are copied from the contact row the statement
/// moves, so they agree with it by construction: `call_attempts` has no foreign keys of its
/// own for them (migration `20261121000004`; the contact's own keys check both).
///
/// The contact is also matched on its organization (`org_id = $3`): redundant for
/// correctness, it keeps the plan cheap whatever the statistics say. Right after an import
/// `contacts_active` can look empty to the planner, which then scans all of it for
/// `status = 'locked'` (measured: 2.7 ms a start at 1,500 admitted contacts) instead of
/// finding one row by id; with the organization it reads that organization's slice at worst.
///
/// Errors: database failures.
pub async fn start_admitted(
    conn: &mut PgConnection,
    a: &NewAttempt,
    now: DateTime<Utc>,
) -> Result<Option<CallAttempt>> {
    let row: Option<CallAttemptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH c AS (
             UPDATE contacts SET status = 'dialing', updated_at = $8
             WHERE id = $1 AND status = 'locked' AND attempt_count = $2 AND org_id = $3
             RETURNING id, org_id, campaign_id),
         a AS (
             INSERT INTO call_attempts (contact_id, attempt_index, org_id, campaign_id, did_id, from_number, to_number, channel_pool, created_at)
             SELECT c.id, $2, c.org_id, c.campaign_id, $4, $5, $6, $7, $8 FROM c
             RETURNING {ATTEMPT_COLUMNS}),
         d AS (
             UPDATE dids SET last_call_at = $8,
                 warming_calls = warming_calls + CASE WHEN state = 'warming' THEN 1 ELSE 0 END
             WHERE id = $4 AND EXISTS (SELECT 1 FROM a))
         SELECT * FROM a"
    )))
    .bind(a.contact_id.0)
    .bind(a.attempt_index)
    .bind(a.org_id.0)
    .bind(a.did_id.0)
    .bind(a.from_number.as_str())
    .bind(a.to_number.as_str())
    .bind(&a.channel_pool)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// SQL statement recording in `call_sids` the carrier call ids of the attempts that `rows`
/// (a CTE with columns `id`, `provider_call_sid`) returns, so an attempt is found by its
/// call id (migration `20261122000007`). A call id already recorded stays with its first
/// attempt.
pub(super) fn record_sids_sql(rows: &str) -> String {
    format!(
        "INSERT INTO call_sids (sid, call_attempt_id)
         SELECT provider_call_sid, id FROM {rows} WHERE provider_call_sid IS NOT NULL
         ON CONFLICT (sid) DO NOTHING"
    )
}

impl Store {
    /// The attempt `id`.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub async fn attempt(&self, id: AttemptId) -> Result<CallAttempt> {
        let row: Option<CallAttemptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or_else(|| StoreError::not_found("call attempt", id))?
            .try_into()
    }

    /// Attempts of a contact, in order.
    ///
    /// Errors: database failures, a stored value that does not parse.
    pub async fn contact_attempts(&self, contact: ContactId) -> Result<Vec<CallAttempt>> {
        let rows: Vec<CallAttemptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE contact_id = $1 ORDER BY attempt_index"
        )))
        .bind(contact.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Attempts of a campaign, by creation.
    ///
    /// Errors: database failures, a stored value that does not parse.
    pub async fn campaign_attempts(&self, campaign: CampaignId) -> Result<Vec<CallAttempt>> {
        let rows: Vec<CallAttemptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE campaign_id = $1 ORDER BY created_at, id"
        )))
        .bind(campaign.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Moves attempt `id` from `pending` to `originating` — the point of no return before the
    /// carrier is called. `None` if it is not pending (already originated, or completed):
    /// the caller must not call the carrier then.
    ///
    /// Errors: database failures.
    pub async fn begin_originate(
        &self,
        id: AttemptId,
        now: DateTime<Utc>,
    ) -> Result<Option<CallAttempt>> {
        let row: Option<CallAttemptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE call_attempts SET status = 'originating', originated_at = $2 WHERE id = $1 AND status = 'pending'
             RETURNING {ATTEMPT_COLUMNS}"
        )))
        .bind(id.0)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    /// Records carriers' call ids, each `(attempt, call SID)`: the attempt is now in progress
    /// (unless a callback already completed it), an id already recorded is kept, and the id is
    /// entered in `call_sids` (the lookup by call id; a call id already there stays with its first
    /// attempt). One statement for the batch (the dialer gathers them like completions); returns
    /// one `Ok(())` per item. Commits asynchronously (`synchronous_commit = off` for its
    /// transaction alone): a write lost in a Postgres crash leaves the attempt `originating`
    /// without its id, which changes nothing the dialer decides (only a `pending` attempt is
    /// originated again, product §5.6), and the completion records the id from the final callback
    /// (`provider_call_sid = COALESCE(provider_call_sid, …)`). An unknown attempt id changes
    /// nothing.
    ///
    /// Errors: database failures, for the whole batch (nothing written).
    pub async fn record_call_sids(&self, items: &[(AttemptId, String)]) -> Result<Vec<Result<()>>> {
        let ids: Vec<i64> = items.iter().map(|(id, _)| id.0).collect();
        let sids: Vec<&str> = items.iter().map(|(_, sid)| sid.as_str()).collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH a AS (
                 UPDATE call_attempts SET provider_call_sid = COALESCE(call_attempts.provider_call_sid, i.sid),
                     status = CASE WHEN call_attempts.status = 'originating' THEN 'in_progress' ELSE call_attempts.status END
                 FROM unnest($1::bigint[], $2::text[]) AS i(id, sid), {ASYNC_COMMIT}
                 WHERE call_attempts.id = i.id
                 RETURNING call_attempts.id, call_attempts.provider_call_sid)
             {RECORD_SIDS}",
            RECORD_SIDS = record_sids_sql("a"),
        )))
        .bind(&ids)
        .bind(&sids)
        .execute(&self.pool)
        .await?;
        Ok(items.iter().map(|_| Ok(())).collect())
    }

    /// Channel holders that must stay live: every contact `locked` or `dialing`, as
    /// `(sip_pool, holder id)`.
    ///
    /// Errors: database failures.
    pub async fn live_channel_holders(&self) -> Result<Vec<(String, String)>> {
        let rows: Vec<(i64, i32, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, attempt_count, sip_pool FROM contacts WHERE status IN ({})",
            crate::statuses::active()
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, a, pool)| {
                (
                    pool,
                    outdial_domain::contact::channel_holder(ContactId(id), a),
                )
            })
            .collect())
    }

    /// Open attempts (not completed: `ended_at IS NULL`, the predicate of the
    /// `call_attempts_open` index): `(id, status, created_at)`, oldest first — the
    /// reconciler restores their timeout (and, for `pending` ones, originate) jobs.
    ///
    /// Errors: database failures, a stored status that does not parse.
    pub async fn open_attempts(
        &self,
        limit: i64,
    ) -> Result<Vec<(AttemptId, AttemptStatus, DateTime<Utc>)>> {
        let rows: Vec<(i64, String, DateTime<Utc>)> =
            sqlx::query_as("SELECT id, status, created_at FROM call_attempts WHERE ended_at IS NULL ORDER BY created_at LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, s, t)| Ok((AttemptId(id), s.parse().map_err(corrupt)?, t)))
            .collect()
    }
}
