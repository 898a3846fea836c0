//! The dialing hot path (SPEC §4, §5): the dispatch cycle's reads and row locks, a tick's
//! claim of an admitted contact, call attempts, and completion with outcome resolution.
//!
//! Functions taking `&mut PgConnection` run inside the caller's transaction so the dialer
//! composes them (e.g. claim → DNC → DID → attempt row in one commit).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use outdial_domain::campaign::CampaignStatus;
use outdial_domain::contact::{ContactStatus, Disposition, Resolution, RetryPolicy, resolve};
use outdial_domain::{AttemptId, CampaignId, ContactId, DidId, OrgId};
use serde::Serialize;
use sqlx::PgConnection;

use crate::contacts::{CONTACT_COLUMNS, Contact, ContactRow};
use crate::{ASYNC_COMMIT, Result, Store, StoreError, corrupt};

/// Key of the Postgres advisory lock held by a running dispatch cycle: two cycles never
/// overlap even if two pods both believe they hold the cycle's queue lease.
pub const DISPATCH_LOCK_KEY: i64 = 0x6f75_7464_6961_6c01; // "outdial" + 1

/// Takes the dispatch-cycle advisory lock for the current transaction; `false` when another
/// cycle holds it. The transaction then commits asynchronously (`synchronous_commit = off`
/// for its transaction alone): a cycle's writes — admissions `queued → locked`, stale locks swept back — are safe to lose
/// in a Postgres crash. A lost admission leaves its contact queued: the tick's
/// compare-and-set on `locked` finds nothing to start and the channel lease lapses; a lost
/// sweep is swept again. The cycle no longer waits for a WAL flush at its commit.
///
/// Errors: database failures.
pub async fn try_dispatch_lock(conn: &mut PgConnection) -> Result<bool> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT pg_try_advisory_xact_lock($1) FROM {ASYNC_COMMIT}"
    )))
    .bind(DISPATCH_LOCK_KEY)
    .fetch_one(conn)
    .await?)
}

/// A contact that was holding (or about to hold) a channel: `(id, attempt_count, sip_pool)`
/// — its channel holder id is `contact:<id>:<attempt_count>`.
pub type HolderRef = (ContactId, i32, String);

/// Returns contacts `locked` since before `stale_before` to `queued` (SPEC §5 step 1).
/// Returns them so their channels can be released.
///
/// Errors: database failures.
pub async fn sweep_stale_locks(
    conn: &mut PgConnection,
    stale_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<HolderRef>> {
    let rows: Vec<(i64, i32, String)> = sqlx::query_as(
        "UPDATE contacts SET status = 'queued', locked_at = NULL, updated_at = $2
         WHERE status = 'locked' AND locked_at < $1
         RETURNING id, attempt_count, sip_pool",
    )
    .bind(stale_before)
    .bind(now)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, a, p)| (ContactId(id), a, p))
        .collect())
}

/// An organization's limit and active calls (contacts locked or dialing; SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrgLoad {
    /// organization
    pub org_id: OrgId,
    /// its concurrency_limit
    pub limit: i32,
    /// contacts locked or dialing
    pub active: i64,
}

/// What a dispatch cycle reads of the contacts that hold capacity (SPEC §4: active =
/// `locked` or `dialing`), in one statement: every organization's limit and active count,
/// each campaign's admitted and in-call counts, and the oldest admission.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Loads {
    /// every organization, by id
    pub orgs: Vec<OrgLoad>,
    /// per campaign with active contacts: `(campaign, locked, dialing)`
    pub campaigns: Vec<(CampaignId, i64, i64)>,
    /// the earliest `locked_at` of any `locked` contact: a stale-lock sweep (SPEC §5 step 1)
    /// has work only when this is older than the threshold
    pub oldest_lock: Option<DateTime<Utc>>,
}

/// Reads [`Loads`]: one pass over the active-contacts index joined to `organizations`
/// (replacing three statements — org loads, campaign loads and the sweep's scan — on the
/// cycle's critical path).
///
/// Errors: database failures.
pub async fn loads(conn: &mut PgConnection) -> Result<Loads> {
    type Row = (i64, i32, Option<i64>, i64, i64, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT o.id, o.concurrency_limit, a.campaign_id, COALESCE(a.locked, 0), COALESCE(a.dialing, 0), a.oldest_lock
         FROM organizations o
         LEFT JOIN (SELECT org_id, campaign_id,
                           count(*) FILTER (WHERE status = 'locked') AS locked,
                           count(*) FILTER (WHERE status = 'dialing') AS dialing,
                           min(locked_at) FILTER (WHERE status = 'locked') AS oldest_lock
                    FROM contacts WHERE status IN ('locked', 'dialing') GROUP BY org_id, campaign_id) a
           ON a.org_id = o.id
         ORDER BY o.id",
    )
    .fetch_all(conn)
    .await?;
    let mut out = Loads::default();
    for (org, limit, campaign, locked, dialing, oldest) in rows {
        match out.orgs.last_mut() {
            Some(last) if last.org_id.0 == org => last.active += locked + dialing,
            _ => out.orgs.push(OrgLoad {
                org_id: OrgId(org),
                limit,
                active: locked + dialing,
            }),
        }
        if let Some(c) = campaign {
            out.campaigns.push((CampaignId(c), locked, dialing));
        }
        out.oldest_lock = out.oldest_lock.into_iter().chain(oldest).min();
    }
    Ok(out)
}

/// A due contact a dispatch cycle may admit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// contact
    pub contact_id: ContactId,
    /// organization
    pub org_id: OrgId,
    /// campaign; `None` for a direct call
    pub campaign_id: Option<CampaignId>,
    /// attempts made (its channel holder is `contact:<id>:<attempt_count>`)
    pub attempt_count: i32,
    /// SIP pool
    pub sip_pool: String,
    /// when it became due
    pub retry_after: DateTime<Utc>,
}

type CandidateRow = (i64, i64, Option<i64>, i32, String, DateTime<Utc>);

fn candidate(r: CandidateRow) -> Candidate {
    Candidate {
        contact_id: ContactId(r.0),
        org_id: OrgId(r.1),
        campaign_id: r.2.map(CampaignId),
        attempt_count: r.3,
        sip_pool: r.4,
        retry_after: r.5,
    }
}

/// Fetches due contacts (SPEC §5 step 4): for each `(campaign, need)` at most `need` queued
/// contacts of that campaign due at `now` whose zone key is among the campaign's `eligible`
/// zones, earliest due first; plus at most `direct_limit` due direct calls (no campaign),
/// which bypass windows. Takes no row locks: a cycle locks only the contacts its allocation
/// picks, with [`lock_contacts`] (`FOR UPDATE SKIP LOCKED`), so two concurrent cycles never
/// admit the same contact.
///
/// Errors: database failures.
pub async fn fetch_candidates(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    needs: &[(CampaignId, i32)],
    eligible: &[(CampaignId, String)],
    direct_limit: i64,
) -> Result<Vec<Candidate>> {
    let mut out: Vec<Candidate> = Vec::new();
    if direct_limit > 0 {
        let rows: Vec<CandidateRow> = sqlx::query_as(
            "SELECT id, org_id, campaign_id, attempt_count, sip_pool, retry_after FROM contacts
             WHERE campaign_id IS NULL AND status = 'queued' AND retry_after <= $1
             ORDER BY retry_after, id LIMIT $2",
        )
        .bind(now)
        .bind(direct_limit)
        .fetch_all(&mut *conn)
        .await?;
        out.extend(rows.into_iter().map(candidate));
    }
    let needs: Vec<&(CampaignId, i32)> = needs.iter().filter(|(_, n)| *n > 0).collect();
    if !needs.is_empty() && !eligible.is_empty() {
        let need_ids: Vec<i64> = needs.iter().map(|(c, _)| c.0).collect();
        let need_n: Vec<i32> = needs.iter().map(|(_, n)| *n).collect();
        let el_ids: Vec<i64> = eligible.iter().map(|(c, _)| c.0).collect();
        let el_tz: Vec<&str> = eligible.iter().map(|(_, tz)| tz.as_str()).collect();
        // Each campaign's open zones as one array, joined once: a correlated `IN (SELECT …
        // FROM elig WHERE …)` rescanned the whole zone list for every contact row (≈ 1 s a
        // cycle at 2,000 campaigns).
        let rows: Vec<CandidateRow> = sqlx::query_as(
            "WITH needs AS (SELECT * FROM unnest($2::bigint[], $3::int[]) AS n(campaign_id, need)),
                  elig AS (SELECT campaign_id, array_agg(tz) AS tzs
                           FROM unnest($4::bigint[], $5::text[]) AS e(campaign_id, tz) GROUP BY campaign_id)
             SELECT c.id, c.org_id, c.campaign_id, c.attempt_count, c.sip_pool, c.retry_after
             FROM needs n JOIN elig e ON e.campaign_id = n.campaign_id CROSS JOIN LATERAL (
                 SELECT id, org_id, campaign_id, attempt_count, sip_pool, retry_after FROM contacts
                 WHERE campaign_id = n.campaign_id AND status = 'queued' AND retry_after <= $1
                   AND timezone = ANY(e.tzs)
                 ORDER BY retry_after, id LIMIT n.need) c",
        )
        .bind(now)
        .bind(&need_ids)
        .bind(&need_n)
        .bind(&el_ids)
        .bind(&el_tz)
        .fetch_all(&mut *conn)
        .await?;
        out.extend(rows.into_iter().map(candidate));
    }
    Ok(out)
}

/// Marks `ids` `locked` (admitted) at `now`, taking their row locks with `FOR UPDATE SKIP
/// LOCKED`: only rows still `queued` and not held by another transaction change (the others
/// are simply not admitted this time). Returns the ids that were locked.
///
/// Errors: database failures.
pub async fn lock_contacts(
    conn: &mut PgConnection,
    ids: &[ContactId],
    now: DateTime<Utc>,
) -> Result<Vec<ContactId>> {
    let ids: Vec<i64> = ids.iter().map(|c| c.0).collect();
    let locked: Vec<i64> = sqlx::query_scalar(
        "UPDATE contacts SET status = 'locked', locked_at = $2, updated_at = $2
         WHERE id IN (SELECT id FROM contacts WHERE id = ANY($1) AND status = 'queued' FOR UPDATE SKIP LOCKED)
         RETURNING id",
    )
    .bind(&ids)
    .bind(now)
    .fetch_all(conn)
    .await?;
    Ok(locked.into_iter().map(ContactId).collect())
}

/// A contact about to be started — admitted for a voice tick or a direct call, or just
/// claimed by an SMS tick — with what its first check needs, read in the same statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// the contact
    pub contact: Contact,
    /// whether one of its numbers is on its organization's suppression list (SPEC §5.1)
    pub suppressed: bool,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    #[sqlx(flatten)]
    contact: ContactRow,
    suppressed: bool,
}

pub(crate) const SUPPRESSED: &str = "EXISTS (SELECT 1 FROM suppressions s WHERE s.org_id = contacts.org_id AND s.phone = ANY(contacts.phone_numbers)) AS suppressed";

pub(crate) fn claimed(row: Option<ClaimedRow>) -> Result<Option<Claimed>> {
    row.map(|r| {
        Ok(Claimed {
            contact: r.contact.try_into()?,
            suppressed: r.suppressed,
        })
    })
    .transpose()
}

/// What a voice tick reads to start its next contact, in one statement
/// ([`next_admitted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NextAdmitted {
    /// the admitted contact to start, with its suppression check
    pub claimed: Claimed,
    /// the campaign row's version ([`crate::campaigns::CampaignHead::version`], Postgres'
    /// `xmin`) as this statement saw it: a caller holding the campaign's settings at this
    /// version need not read them again
    pub campaign_version: i64,
    /// the DIDs of the contact's organization that could place the call (state `active` or
    /// `warming`, by id, as [`crate::dids::usable_dids`] returns them): the caller ID is
    /// chosen among them (SPEC §5.5)
    pub org_dids: Vec<crate::dids::Did>,
}

#[derive(sqlx::FromRow)]
struct NextAdmittedRow {
    #[sqlx(flatten)]
    claimed: ClaimedRow,
    campaign_version: i64,
    org_dids: sqlx::types::Json<Vec<crate::dids::DidRow>>,
}

/// The admitted (`locked`) contact of `campaign` a tick starts next — oldest admission
/// first — and only while the campaign is still dialing, so a pause or cancel stops new
/// attempts at once; with the campaign's row version and its organization's usable caller
/// IDs. One statement, where a tick used to make three (campaign, contact, caller IDs): a
/// round trip costs the fleet more CPU than any of the three reads (docs/BENCHMARKS.md,
/// sixth session). A read without row locks: the attempt is recorded by
/// [`start_admitted`], whose compare-and-set on `locked` makes a concurrent change (sweep,
/// pause, cancel) win over it. `None` when none is admitted or the campaign is not dialing.
/// SPEC §5 "Campaign pacing": one admitted contact per tick.
///
/// Errors: database failures, a stored contact or DID that does not parse.
pub async fn next_admitted(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Option<NextAdmitted>> {
    let row: Option<NextAdmittedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.*, k.xmin::text::bigint AS campaign_version,
                COALESCE((SELECT json_agg(d ORDER BY d.id) FROM (
                    SELECT {DID_COLUMNS} FROM dids WHERE dids.org_id = c.org_id AND {USABLE}) d),
                  '[]') AS org_dids
         FROM campaigns k CROSS JOIN LATERAL (
             SELECT {CONTACT_COLUMNS}, {SUPPRESSED} FROM contacts
             WHERE org_id = k.org_id AND campaign_id = k.id AND status = 'locked'
             ORDER BY locked_at, id LIMIT 1) c
         WHERE k.id = $1 AND k.status = 'dialing'",
        DID_COLUMNS = crate::dids::DID_COLUMNS,
        USABLE = crate::dids::usable_state_sql(),
    )))
    .bind(campaign.0)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(NextAdmitted {
            claimed: Claimed {
                contact: r.claimed.contact.try_into()?,
                suppressed: r.claimed.suppressed,
            },
            campaign_version: r.campaign_version,
            org_dids: r
                .org_dids
                .0
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
        })
    })
    .transpose()
}

/// Contact `id` if it is admitted (`locked`): a direct call (SPEC §5, `POST /api/calls`)
/// about to start. `None` otherwise (already started, or no longer admitted).
///
/// Errors: database failures.
pub async fn admitted_contact(conn: &mut PgConnection, id: ContactId) -> Result<Option<Claimed>> {
    // By id alone, the status checked here: see `start_admitted` on `status = 'locked'` plans.
    let row: Option<ClaimedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONTACT_COLUMNS}, {SUPPRESSED} FROM contacts WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_optional(conn)
    .await?;
    Ok(claimed(row)?.filter(|c| c.contact.status == ContactStatus::Locked))
}

/// Ends `contact` without a call: `status` (`cancelled`, `exhausted`, `failed`) with
/// `reason` — only if it is still in status `from` (`locked` for a voice contact about to
/// be started, `sending` for a claimed SMS prospect; SPEC §5 steps 1 and 4, §6). Returns
/// whether it was.
///
/// Errors: database failures.
pub async fn end_contact(
    conn: &mut PgConnection,
    contact: &Contact,
    from: &str,
    status: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    // With the organization: see `start_admitted`.
    let done = sqlx::query(
        "UPDATE contacts SET status = $3, status_reason = $4, locked_at = NULL, updated_at = $5
         WHERE id = $1 AND status = $2 AND org_id = $6",
    )
    .bind(contact.id.0)
    .bind(from)
    .bind(status)
    .bind(reason)
    .bind(now)
    .bind(contact.org_id.0)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts admitted (`locked`) `contact` back to `queued`, due at `retry_after`, without
/// using up an attempt (outside its window, no channel, no caller ID: SPEC §5 steps 2, 3,
/// 5). Returns whether it was still admitted.
///
/// Errors: database failures.
pub async fn requeue_admitted(
    conn: &mut PgConnection,
    contact: &Contact,
    retry_after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    // With the organization: see `start_admitted`.
    let done = sqlx::query(
        "UPDATE contacts SET status = 'queued', retry_after = $2, locked_at = NULL, updated_at = $3
         WHERE id = $1 AND status = 'locked' AND org_id = $4",
    )
    .bind(contact.id.0)
    .bind(retry_after)
    .bind(now)
    .bind(contact.org_id.0)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A call attempt.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CallAttempt {
    /// id
    pub id: i64,
    /// contact
    pub contact_id: i64,
    /// 0-based attempt index (idempotency key with the contact)
    pub attempt_index: i32,
    /// organization
    pub org_id: i64,
    /// campaign (None for a direct call)
    pub campaign_id: Option<i64>,
    /// caller ID used
    pub did_id: Option<i64>,
    /// caller ID number, E.164
    pub from_number: String,
    /// dialed number, E.164
    pub to_number: String,
    /// SIP pool holding its channel
    pub channel_pool: String,
    /// pending, originating, in_progress, completed
    pub status: String,
    /// outcome once completed
    pub disposition: Option<String>,
    /// carrier call id
    pub provider_call_sid: Option<String>,
    /// carrier's last CallStatus
    pub carrier_status: Option<String>,
    /// carrier's AMD verdict
    pub answered_by: Option<String>,
    /// talk time, s
    pub duration_s: Option<i32>,
    /// spam flag
    pub spam_flagged: bool,
    /// error text for failures
    pub error: Option<String>,
    /// webhook, timeout or originate
    pub completed_by: Option<String>,
    /// created (= start of the attempt)
    pub created_at: DateTime<Utc>,
    /// when the carrier was called
    pub originated_at: Option<DateTime<Utc>>,
    /// when it ended
    pub ended_at: Option<DateTime<Utc>>,
}

impl CallAttempt {
    /// The attempt id.
    pub fn attempt_id(&self) -> AttemptId {
        AttemptId(self.id)
    }

    /// Its channel holder id (`contact:<contact>:<attempt_index>`).
    pub fn holder(&self) -> String {
        outdial_domain::contact::channel_holder(ContactId(self.contact_id), self.attempt_index)
    }
}

const ATTEMPT_COLUMNS: &str = "id, contact_id, attempt_index, org_id, campaign_id, did_id, from_number, to_number, channel_pool, \
    status, disposition, provider_call_sid, carrier_status, answered_by, duration_s, spam_flagged, error, completed_by, \
    created_at, originated_at, ended_at";

/// [`ATTEMPT_COLUMNS`], each qualified with `call_attempts.` (for statements that join
/// tables sharing column names).
fn qualified_attempt_columns() -> String {
    ATTEMPT_COLUMNS
        .split(',')
        .map(|c| format!("call_attempts.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    id: i64,
    attempt_status: String,
    attempt_index: i32,
    phone_count: Option<i32>,
    max_attempts_per_phone_number: Option<i32>,
    retry_delay_ms: Option<i64>,
    voicemail_drop: Option<bool>,
    retry_busy: Option<bool>,
    campaign_status: Option<String>,
}

impl PolicyRow {
    /// What attempt `self` ending with `disposition` at `now` makes of its contact (the
    /// outcome table, [`resolve`]), with the contact's new status, status reason, attempt
    /// count and due time: a retry in a cancelled campaign becomes `cancelled`.
    fn resolve(&self, disposition: Disposition, now: DateTime<Utc>) -> Result<ContactWrite> {
        let (policy, campaign_status) = match &self.campaign_status {
            Some(status) => {
                let policy = RetryPolicy {
                    max_attempts_per_phone_number: u32::try_from(
                        self.max_attempts_per_phone_number.unwrap_or(2),
                    )
                    .map_err(corrupt)?,
                    retry_delay_ms: self
                        .retry_delay_ms
                        .unwrap_or(RetryPolicy::default().retry_delay_ms),
                    voicemail_drop: self.voicemail_drop.unwrap_or(false),
                    retry_busy: self.retry_busy.unwrap_or(false),
                };
                (
                    policy,
                    Some(status.parse::<CampaignStatus>().map_err(corrupt)?),
                )
            }
            None => (RetryPolicy::default(), None),
        };
        let index = u32::try_from(self.attempt_index).map_err(corrupt)?;
        let phones = usize::try_from(self.phone_count.unwrap_or(0)).unwrap_or(0);
        let resolution = resolve(disposition, index, phones, &policy, now);
        let (status, reason, next_index, retry_after, number_index) = match resolution {
            Resolution::Retry { .. } if campaign_status == Some(CampaignStatus::Cancelled) => (
                "cancelled",
                Some("campaign_cancelled"),
                self.attempt_index + 1,
                None,
                None,
            ),
            Resolution::Retry {
                next_attempt_index,
                retry_after,
            } => {
                let number = next_attempt_index / policy.max_attempts_per_phone_number.max(1);
                (
                    "queued",
                    None,
                    i32::try_from(next_attempt_index).map_err(corrupt)?,
                    Some(retry_after),
                    Some(i32::try_from(number).map_err(corrupt)?),
                )
            }
            other => (
                other.status().as_str(),
                None,
                self.attempt_index + 1,
                None,
                None,
            ),
        };
        Ok(ContactWrite {
            resolution,
            status,
            reason,
            next_index,
            retry_after,
            number_index,
        })
    }
}

/// A completion's effect on its contact ([`PolicyRow::resolve`]).
#[derive(Clone, Copy)]
struct ContactWrite {
    resolution: Resolution,
    status: &'static str,
    reason: Option<&'static str>,
    next_index: i32,
    retry_after: Option<DateTime<Utc>>,
    /// the index of the number a retry dials (its zone key becomes the contact's
    /// `timezone`, SPEC §5.2); `None` when the contact is not queued again
    number_index: Option<i32>,
}

/// The completing statement's input, one array per column (bound to `unnest`).
#[derive(Default)]
struct CompletionWrites {
    item: Vec<i32>,
    id: Vec<i64>,
    disposition: Vec<&'static str>,
    carrier_status: Vec<Option<String>>,
    answered_by: Vec<Option<String>>,
    duration_s: Vec<Option<i32>>,
    call_sid: Vec<Option<String>>,
    completed_by: Vec<&'static str>,
    error: Vec<Option<String>>,
    ended_at: Vec<DateTime<Utc>>,
    spam_flagged: Vec<bool>,
    contact_status: Vec<&'static str>,
    reason: Vec<Option<&'static str>>,
    next_index: Vec<i32>,
    retry_after: Vec<Option<DateTime<Utc>>>,
    number_index: Vec<Option<i32>>,
    resolution: HashMap<i32, Resolution>,
}

impl CompletionWrites {
    fn push(
        &mut self,
        item: usize,
        id: AttemptId,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
        w: ContactWrite,
    ) {
        let item = i32::try_from(item).unwrap_or(i32::MAX);
        self.item.push(item);
        self.id.push(id.0);
        self.disposition.push(outcome.disposition.as_str());
        self.carrier_status.push(outcome.carrier_status.clone());
        self.answered_by.push(outcome.answered_by.clone());
        self.duration_s.push(outcome.duration_s);
        self.call_sid.push(outcome.call_sid.clone());
        self.completed_by.push(outcome.completed_by);
        self.error.push(outcome.error.clone());
        self.ended_at.push(now);
        self.spam_flagged.push(outcome.spam_flagged);
        self.contact_status.push(w.status);
        self.reason.push(w.reason);
        self.next_index.push(w.next_index);
        self.retry_after.push(w.retry_after);
        self.number_index.push(w.number_index);
        self.resolution.insert(item, w.resolution);
    }
}

#[derive(sqlx::FromRow)]
struct CompletedRow {
    /// the batch item it completes
    item: i32,
    #[sqlx(flatten)]
    attempt: CallAttempt,
    contact_status: String,
    campaign_finished: bool,
}

/// An attempt to record before calling the carrier (SPEC §5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    /// contact
    pub contact_id: ContactId,
    /// attempt index = the contact's attempt_count
    pub attempt_index: i32,
    /// organization (the contact's; the attempt row copies organization and campaign from
    /// the contact row itself)
    pub org_id: OrgId,
    /// caller ID
    pub did_id: DidId,
    /// caller ID number
    pub from_number: String,
    /// dialed number
    pub to_number: String,
    /// SIP pool
    pub channel_pool: String,
}

/// Starts admitted contact `a.contact_id`: moves it `locked → dialing` and records the
/// attempt row — the idempotency key (contact, attempt index) — in one statement, committed
/// before the carrier is called (SPEC §5.6). The same statement records the call on its
/// caller ID: last call time (least-recently-used order) and, while warming, one more call
/// of the ramp (SPEC §7).
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
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
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
    .bind(&a.from_number)
    .bind(&a.to_number)
    .bind(&a.channel_pool)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

/// SQL statement recording in `call_sids` the carrier call ids of the attempts that `rows`
/// (a CTE with columns `id`, `provider_call_sid`) returns, so an attempt is found by its
/// call id (migration `20261122000007`). A call id already recorded stays with its first
/// attempt.
fn record_sids_sql(rows: &str) -> String {
    format!(
        "INSERT INTO call_sids (sid, call_attempt_id)
         SELECT provider_call_sid, id FROM {rows} WHERE provider_call_sid IS NOT NULL
         ON CONFLICT (sid) DO NOTHING"
    )
}

/// How an attempt ended, as reported by the carrier or decided by a timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// the disposition
    pub disposition: Disposition,
    /// carrier's CallStatus
    pub carrier_status: Option<String>,
    /// carrier's AnsweredBy
    pub answered_by: Option<String>,
    /// talk time, s
    pub duration_s: Option<i32>,
    /// carrier call id
    pub call_sid: Option<String>,
    /// `webhook`, `timeout` or `originate`
    pub completed_by: &'static str,
    /// error text
    pub error: Option<String>,
    /// the carrier reported the call as flagged spam (SPEC §7 spam-clean component)
    pub spam_flagged: bool,
}

/// A completion that happened (exactly once per attempt).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// the attempt, now completed
    pub attempt: CallAttempt,
    /// what the contact became
    pub resolution: Resolution,
    /// the contact's new status
    pub contact_status: String,
    /// the contact is finished and no other contact of its campaign is open (queued,
    /// locked, dialing, sending, sent): the campaign can complete (SPEC §8). Two
    /// completions racing for a campaign's last two contacts may both see the other still
    /// open (within one [`Store::complete_attempts`] batch they do not); the campaign's
    /// idle tick completes it then.
    pub campaign_finished: bool,
}

impl Store {
    /// The attempt `id`.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub async fn attempt(&self, id: AttemptId) -> Result<CallAttempt> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found("call attempt", id))
    }

    /// Attempts of a contact, in order.
    ///
    /// Errors: database failures.
    pub async fn contact_attempts(&self, contact: ContactId) -> Result<Vec<CallAttempt>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE contact_id = $1 ORDER BY attempt_index"
        )))
        .bind(contact.0)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Attempts of a campaign, by creation.
    ///
    /// Errors: database failures.
    pub async fn campaign_attempts(&self, campaign: CampaignId) -> Result<Vec<CallAttempt>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE campaign_id = $1 ORDER BY created_at, id"
        )))
        .bind(campaign.0)
        .fetch_all(&self.pool)
        .await?)
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
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE call_attempts SET status = 'originating', originated_at = $2 WHERE id = $1 AND status = 'pending'
             RETURNING {ATTEMPT_COLUMNS}"
        )))
        .bind(id.0)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records carriers' call ids, each `(attempt, call SID)`: the attempt is now in
    /// progress (unless a callback already completed it), an id already recorded is kept,
    /// and the id is entered in `call_sids` (the lookup by call id; a call id already there
    /// stays with its first attempt). One statement for the batch (the dialer gathers them
    /// like completions); returns one `Ok(())` per item. Commits asynchronously
    /// (`synchronous_commit = off` for its transaction alone): a write lost in a Postgres crash leaves the attempt `originating` without its id, which changes
    /// nothing the dialer decides (only a `pending` attempt is originated again, SPEC §5.6),
    /// and the completion records the id from the final callback
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

    /// Ends attempt `id` with `outcome` exactly once (SPEC §5.7): the first completion (by
    /// webhook, timeout or originate failure) wins and resolves the contact by the outcome
    /// table with the campaign's retry policy; later ones return `None` and change nothing.
    /// If the campaign was cancelled meanwhile, a retry becomes `cancelled`. One completion of
    /// [`Store::complete_attempts`].
    ///
    /// Errors: [`StoreError::NotFound`] for an unknown attempt, database failures.
    pub async fn complete_attempt(
        &self,
        id: AttemptId,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<Completion>> {
        let mut results = self
            .complete_attempts(&[(id, outcome.clone(), now)])
            .await?;
        results.pop().unwrap_or(Ok(None))
    }

    /// Ends a batch of attempts (SPEC §5.7), each `(attempt, outcome, time it ended)`, as
    /// [`Store::complete_attempt`] ends one — in two statements for the whole batch, so many
    /// calls ending at once share the round trips and the commit (the dialer gathers them,
    /// `dialer.write_gather_ms`). Returns one result per item, in order.
    ///
    /// One transaction: a read of what the outcome table needs (the attempt index, the
    /// contact's number count, the campaign's policy and status — the campaigns
    /// share-locked, so a status change committing meanwhile is either seen by the read or
    /// waits for the commit: a retry in a campaign cancelled at that moment becomes
    /// `cancelled`, never `queued`), then one statement that ends each attempt only if it
    /// is still open (the compare-and-set), writes its caller ID's `did_health_events` row
    /// (SPEC §7: exactly one per attempt with a DID, so no outcome can be lost between the
    /// completion and the health worker; its caller ID and attempt are copied from the
    /// attempt row, hence no foreign keys of its own — migration `20261121000004`) and
    /// resolves its contact with it, atomically. The same statement tells whether the
    /// campaign has no open contact left ([`Completion::campaign_finished`]); contacts that
    /// the same batch closes do not count as open.
    ///
    /// An attempt named twice in one batch is completed by its first item; the later ones
    /// return `None`, as a second completion would.
    ///
    /// Errors: per item, [`StoreError::NotFound`] for an unknown attempt and
    /// [`StoreError::Corrupt`] for a stored value that does not parse (the other items are
    /// completed); for the whole batch (nothing written), database failures.
    pub async fn complete_attempts(
        &self,
        items: &[(AttemptId, AttemptOutcome, DateTime<Utc>)],
    ) -> Result<Vec<Result<Option<Completion>>>> {
        let ids: Vec<i64> = items.iter().map(|(id, _, _)| id.0).collect();
        let mut tx = self.pool.begin().await?;
        // The campaigns are share-locked, in id order, for the rest of the transaction: a
        // status change (cancel, pause) holds its campaign's row lock until it commits, so the
        // read below waits for a change in flight and sees the status it committed, and a
        // change that comes later waits until the completion has committed — then its own
        // contact update sees the contacts this batch requeued. Without the lock a cancel
        // committed between the read and the write left a retried contact `queued` in a
        // cancelled campaign.
        let policies: Vec<PolicyRow> = sqlx::query_as(
            "WITH k AS (
                 SELECT id, max_attempts_per_phone_number, retry_delay_ms, voicemail_drop, retry_busy, status
                 FROM campaigns WHERE id IN (SELECT campaign_id FROM call_attempts WHERE id = ANY($1))
                 ORDER BY id FOR SHARE)
             SELECT a.id, a.status AS attempt_status, a.attempt_index, cardinality(c.phone_numbers) AS phone_count,
                    k.max_attempts_per_phone_number, k.retry_delay_ms, k.voicemail_drop, k.retry_busy, k.status AS campaign_status
             FROM call_attempts a JOIN contacts c ON c.id = a.contact_id LEFT JOIN k ON k.id = a.campaign_id
             WHERE a.id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let policies: HashMap<i64, PolicyRow> = policies.into_iter().map(|p| (p.id, p)).collect();
        let mut results: Vec<Result<Option<Completion>>> = Vec::with_capacity(items.len());
        let mut writes = CompletionWrites::default();
        let mut seen = HashSet::new();
        for (i, (id, outcome, now)) in items.iter().enumerate() {
            let Some(row) = policies.get(&id.0) else {
                results.push(Err(StoreError::not_found("call attempt", id)));
                continue;
            };
            if row.attempt_status == "completed" || !seen.insert(id.0) {
                results.push(Ok(None));
                continue;
            }
            match row.resolve(outcome.disposition, *now) {
                Ok(r) => writes.push(i, *id, outcome, *now, r),
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            }
            results.push(Ok(None)); // replaced below when the statement completes it
        }
        if writes.item.is_empty() {
            tx.rollback().await?;
            return Ok(results);
        }
        // Each attempt ends only if still open; its contact changes only with it. A contact
        // that is no longer dialing (cancelled meanwhile) keeps its status; the attempt's
        // outcome is still recorded on it. `campaign_finished`: the contact is no longer open
        // and no other contact of its campaign is — the statement's snapshot still shows the
        // old rows of the contacts it closes, hence `NOT IN (… closed)`.
        let done: Vec<CompletedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH i AS (
                 SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
                                      $8::text[], $9::text[], $10::timestamptz[], $11::bool[], $12::text[], $13::text[],
                                      $14::int[], $15::timestamptz[], $16::int[])
                     AS i(item, id, disposition, carrier_status, answered_by, duration_s, call_sid, completed_by, error,
                          ended_at, spam_flagged, contact_status, reason, next_index, retry_after, number_index)),
             a AS (
                 UPDATE call_attempts SET status = 'completed', disposition = i.disposition,
                     carrier_status = COALESCE(i.carrier_status, call_attempts.carrier_status),
                     answered_by = COALESCE(i.answered_by, call_attempts.answered_by),
                     duration_s = COALESCE(i.duration_s, call_attempts.duration_s),
                     provider_call_sid = COALESCE(call_attempts.provider_call_sid, i.call_sid),
                     completed_by = i.completed_by, error = i.error, ended_at = i.ended_at,
                     spam_flagged = call_attempts.spam_flagged OR i.spam_flagged
                 FROM i WHERE call_attempts.id = i.id AND call_attempts.status <> 'completed'
                 RETURNING i.item, {ATTEMPT_COLUMNS_OF_CALL_ATTEMPTS}),
             s AS ({RECORD_SIDS}),
             h AS (
                 INSERT INTO did_health_events (did_id, call_attempt_id, disposition, duration_s, spam_flagged, at)
                 SELECT did_id, id, disposition, COALESCE(duration_s, 0), spam_flagged, ended_at
                 FROM a WHERE did_id IS NOT NULL
                 ON CONFLICT (call_attempt_id) DO NOTHING),
             c AS (
                 UPDATE contacts SET status = CASE WHEN contacts.status = 'dialing' THEN i.contact_status ELSE contacts.status END,
                     disposition = i.disposition,
                     status_reason = CASE WHEN contacts.status = 'dialing' THEN COALESCE(i.reason, contacts.status_reason) ELSE contacts.status_reason END,
                     attempt_count = GREATEST(contacts.attempt_count, i.next_index),
                     retry_after = COALESCE(i.retry_after, contacts.retry_after),
                     timezone = COALESCE(contacts.phone_timezones[i.number_index + 1], contacts.timezone),
                     locked_at = NULL, updated_at = i.ended_at
                 FROM a JOIN i ON i.item = a.item WHERE contacts.id = a.contact_id
                 RETURNING contacts.id, contacts.status, contacts.campaign_id, contacts.org_id)
             SELECT a.*, c.status AS contact_status,
                    (c.campaign_id IS NOT NULL AND c.status NOT IN ({OPEN})
                     AND NOT {ANY_OPEN})
                    AS campaign_finished
             FROM a JOIN c ON c.id = a.contact_id",
            ATTEMPT_COLUMNS_OF_CALL_ATTEMPTS = qualified_attempt_columns(),
            RECORD_SIDS = record_sids_sql("a"),
            OPEN = crate::stats::OPEN_STATUSES,
            ANY_OPEN = crate::stats::any_open_contact_sql(
                "c.campaign_id",
                "c.org_id",
                &format!("o.id NOT IN (SELECT x.id FROM c x WHERE x.status NOT IN ({}))", crate::stats::OPEN_STATUSES)
            ),
        )))
        .bind(&writes.item)
        .bind(&writes.id)
        .bind(&writes.disposition)
        .bind(&writes.carrier_status)
        .bind(&writes.answered_by)
        .bind(&writes.duration_s)
        .bind(&writes.call_sid)
        .bind(&writes.completed_by)
        .bind(&writes.error)
        .bind(&writes.ended_at)
        .bind(&writes.spam_flagged)
        .bind(&writes.contact_status)
        .bind(&writes.reason)
        .bind(&writes.next_index)
        .bind(&writes.retry_after)
        .bind(&writes.number_index)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        for d in done {
            let i = usize::try_from(d.item).map_err(corrupt)?;
            let resolution = writes.resolution.remove(&d.item).ok_or_else(|| {
                StoreError::Corrupt(format!("completion returned unknown item {}", d.item))
            })?;
            results[i] = Ok(Some(Completion {
                attempt: d.attempt,
                resolution,
                contact_status: d.contact_status,
                campaign_finished: d.campaign_finished,
            }));
        }
        Ok(results)
    }

    /// Channel holders that must stay live: every contact `locked` or `dialing`, as
    /// `(sip_pool, holder id)`.
    ///
    /// Errors: database failures.
    pub async fn live_channel_holders(&self) -> Result<Vec<(String, String)>> {
        let rows: Vec<(i64, i32, String)> =
            sqlx::query_as("SELECT id, attempt_count, sip_pool FROM contacts WHERE status IN ('locked', 'dialing')")
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
    /// Errors: database failures.
    pub async fn open_attempts(
        &self,
        limit: i64,
    ) -> Result<Vec<(AttemptId, String, DateTime<Utc>)>> {
        let rows: Vec<(i64, String, DateTime<Utc>)> =
            sqlx::query_as("SELECT id, status, created_at FROM call_attempts WHERE ended_at IS NULL ORDER BY created_at LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, s, t)| (AttemptId(id), s, t))
            .collect())
    }
}

/// The earliest `retry_after` of each campaign's queued contacts (when its next contact
/// becomes due).
///
/// Errors: database failures.
pub async fn next_due_by_campaign(
    conn: &mut PgConnection,
) -> Result<HashMap<CampaignId, DateTime<Utc>>> {
    let rows: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT campaign_id, min(retry_after) FROM contacts WHERE status = 'queued' AND campaign_id IS NOT NULL GROUP BY campaign_id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(c, t)| (CampaignId(c), t)).collect())
}
