//! The dispatch cycle's statements (product §4, §5 "Dispatch cycle"): its advisory lock, the
//! stale-lock sweep, the loads (active contacts per organization and campaign), the due
//! candidates and the admission row locks.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use outdial_domain::{CampaignId, ContactId, OrgId};
use serde::Serialize;
use sqlx::PgConnection;

use crate::{ASYNC_COMMIT, Result, corrupt};

/// Key of the Postgres advisory lock held by a running dispatch cycle: two cycles never
/// overlap even if two pods both believe they hold the cycle's queue lease.
pub const DISPATCH_LOCK_KEY: i64 = 0x6f75_7464_6961_6c01; // "outdial" + 1

/// Takes the dispatch-cycle advisory lock for the current transaction; `false` when another cycle
/// holds it. The transaction then commits asynchronously (`synchronous_commit = off` for its
/// transaction alone): a cycle's writes — admissions `queued → locked`, stale locks swept back —
/// are safe to lose in a Postgres crash. A lost admission leaves its contact queued: the tick's
/// compare-and-set on `locked` finds nothing to start and the channel lease lapses; a lost sweep is
/// swept again. The cycle no longer waits for a WAL flush at its commit.
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

/// Returns contacts `locked` since before `stale_before` to `queued` (product §5 "Dispatch cycle"
/// step 1). Returns them so their channels can be released.
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

/// An organization's limit and active calls (contacts locked or dialing; product §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrgLoad {
    /// the organization (rows are ordered by its id)
    pub org_id: OrgId,
    /// its `concurrency_limit` (1..=10000)
    pub limit: u32,
    /// contacts locked or dialing
    pub active: u32,
}

/// What a dispatch cycle reads of the contacts that hold capacity (product §4: active =
/// `locked` or `dialing`), in one statement: every organization's limit and active count,
/// each campaign's admitted and in-call counts, and the oldest admission.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Loads {
    /// every organization, by id
    pub orgs: Vec<OrgLoad>,
    /// per campaign with active contacts: `(campaign, locked, dialing)`
    pub campaigns: Vec<(CampaignId, i64, i64)>,
    /// the earliest `locked_at` of any `locked` contact: a stale-lock sweep (product §5 "Dispatch
    /// cycle" step 1) has work only when this is older than the threshold
    pub oldest_lock: Option<DateTime<Utc>>,
}

/// Reads [`Loads`]: one pass over the active-contacts index joined to `organizations`
/// (replacing three statements — org loads, campaign loads and the sweep's scan — on the
/// cycle's critical path).
///
/// Errors: database failures; a negative or overflowing count (a corrupt row).
pub async fn loads(conn: &mut PgConnection) -> Result<Loads> {
    type Row = (i64, i32, Option<i64>, i64, i64, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT o.id, o.concurrency_limit, a.campaign_id, COALESCE(a.locked, 0), COALESCE(a.dialing, 0), a.oldest_lock
         FROM organizations o
         LEFT JOIN (SELECT org_id, campaign_id,
                           count(*) FILTER (WHERE status = 'locked') AS locked,
                           count(*) FILTER (WHERE status = 'dialing') AS dialing,
                           min(locked_at) FILTER (WHERE status = 'locked') AS oldest_lock
                    FROM contacts WHERE status IN ({active}) GROUP BY org_id, campaign_id) a
           ON a.org_id = o.id
         ORDER BY o.id",
        active = crate::statuses::active()
    )))
    .fetch_all(conn)
    .await?;
    let mut out = Loads::default();
    for (org, limit, campaign, locked, dialing, oldest) in rows {
        let here = u32::try_from(locked + dialing).map_err(corrupt)?;
        match out.orgs.last_mut() {
            Some(last) if last.org_id.0 == org => {
                last.active = last.active.checked_add(here).ok_or_else(|| {
                    corrupt(format!("organization {org}: active count overflows"))
                })?;
            }
            _ => out.orgs.push(OrgLoad {
                org_id: OrgId(org),
                limit: u32::try_from(limit).map_err(corrupt)?,
                active: here,
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
    /// the due `queued` contact; row-locked only if picked
    pub contact_id: ContactId,
    /// the organization whose share admits it
    pub org_id: OrgId,
    /// campaign; `None` for a direct call
    pub campaign_id: Option<CampaignId>,
    /// attempts made (its channel holder is `contact:<id>:<attempt_count>`)
    pub attempt_count: i32,
    /// pool it must get a channel from to be admitted
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

/// Fetches due contacts (product §5 "Dispatch cycle" step 4): for each `(campaign, need)` at most
/// `need` queued contacts of that campaign due at `now` whose zone key is among the campaign's
/// `eligible` zones, earliest due first; plus at most `direct_limit` due direct calls (no
/// campaign), which bypass windows. Takes no row locks: a cycle locks only the contacts its
/// allocation picks, with [`lock_contacts`] (`FOR UPDATE SKIP LOCKED`), so two concurrent cycles
/// never admit the same contact.
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
