//! Campaign aggregates (SPEC §9) and their stored snapshot.

use chrono::{DateTime, Utc};
use outdial_domain::{CampaignId, OrgId};
use serde::{Deserialize, Serialize};

use crate::campaigns::{CAMPAIGN_COLUMNS, Campaign, CampaignRow};
use crate::contacts::StatusCount;
use crate::{ASYNC_COMMIT, Result, Store, StoreError};

/// Attempt figures of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AttemptFigures {
    /// attempts started
    pub attempts: i64,
    /// attempts not yet completed
    pub in_flight: i64,
    /// attempts answered (human or machine)
    pub answered: i64,
    /// attempts started in the last 60 s before `now`
    pub last_minute: i64,
    /// first attempt's start
    pub first_at: Option<DateTime<Utc>>,
    /// last attempt's start
    pub last_at: Option<DateTime<Utc>>,
}

/// What a campaign's stats are computed from (SPEC §9), read together by
/// [`Store::campaign_figures`].
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignFigures {
    /// the campaign
    pub campaign: Campaign,
    /// its contacts by status, disposition and status reason, as
    /// [`Store::contact_counts`] orders them
    pub counts: Vec<StatusCount>,
    /// its attempts, as [`Store::attempt_figures`]
    pub attempts: AttemptFigures,
}

#[derive(sqlx::FromRow)]
struct CampaignFiguresRow {
    #[sqlx(flatten)]
    campaign: CampaignRow,
    counts: sqlx::types::Json<Vec<StatusCount>>,
    #[sqlx(flatten)]
    attempts: AttemptFigures,
}

/// A campaign's contacts counted by status, disposition and status reason (columns
/// `status, disposition, reason, count`), for the campaign id and its organization id given
/// by the SQL expressions `campaign` and `org` (parameters like `$1`, or columns of an outer
/// query). Unordered; order by [`COUNTS_ORDER`]. The one text behind
/// [`Store::contact_counts`] and [`Store::campaign_figures`].
pub(crate) fn contact_counts_sql(campaign: &str, org: &str) -> String {
    format!(
        "SELECT status, disposition, status_reason AS reason, count(*) AS count FROM contacts
         WHERE {all} GROUP BY status, disposition, status_reason",
        all = campaign_contacts_sql(campaign, org),
    )
}

/// The order of [`contact_counts_sql`]'s rows (its output names).
pub(crate) const COUNTS_ORDER: &str = "status, disposition NULLS FIRST, reason NULLS FIRST";

/// A campaign's [`AttemptFigures`] (one row, its field names as columns) for the campaign id
/// given by the SQL expression `campaign`, at the time given by the SQL expression `now`.
/// The one text behind [`Store::attempt_figures`] and [`Store::campaign_figures`].
fn attempt_figures_sql(campaign: &str, now: &str) -> String {
    format!(
        "SELECT count(*) AS attempts,
                count(*) FILTER (WHERE status <> 'completed') AS in_flight,
                count(*) FILTER (WHERE disposition IN ('human_connected', 'human_hangup', 'voicemail')) AS answered,
                count(*) FILTER (WHERE created_at > {now} - interval '60 seconds' AND created_at <= {now}) AS last_minute,
                min(created_at) AS first_at, max(created_at) AS last_at
         FROM call_attempts WHERE campaign_id = {campaign}"
    )
}

/// The statuses of contacts in progress, as a literal (for `concat!`).
macro_rules! in_progress_statuses {
    () => {
        "'locked', 'dialing', 'sending', 'sent'"
    };
}

/// The contact statuses that are not finished (SQL list): queued or
/// [`IN_PROGRESS_STATUSES`]. A campaign with a contact in one of them is not complete
/// (SPEC §8).
pub(crate) const OPEN_STATUSES: &str = concat!("'queued', ", in_progress_statuses!());

/// The statuses of contacts in progress (SQL list): those the partial index
/// `contacts_active` holds (migration `20261122000006`).
pub(crate) const IN_PROGRESS_STATUSES: &str = in_progress_statuses!();

/// The statuses of finished contacts (SQL list): those the partial index
/// `contacts_campaign_finished` holds (migration `20261122000006`).
pub(crate) const FINISHED_STATUSES: &str =
    "'completed', 'exhausted', 'failed', 'cancelled', 'delivered'";

/// SQL condition: campaign `campaign` of organization `org` (SQL expressions of the outer
/// query) has an open contact — queued or [`IN_PROGRESS_STATUSES`] (SPEC §8) — that also
/// meets `and` (an SQL condition on alias `o`, or `TRUE`). One `EXISTS` per partial index
/// (`contacts_campaign_due`, `contacts_active`), each stopping at its first row: `contacts`
/// has no full index by campaign, because every status change would write an entry into it
/// (migration `20261122000006`).
pub(crate) fn any_open_contact_sql(campaign: &str, org: &str, and: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM contacts o WHERE o.campaign_id = {campaign} AND o.status = 'queued' AND {and})
          OR EXISTS (SELECT 1 FROM contacts o WHERE o.org_id = {org} AND o.campaign_id = {campaign}
                     AND o.status IN ({IN_PROGRESS_STATUSES}) AND {and}))"
    )
}

/// SQL condition on a `contacts` row: it belongs to campaign `campaign` of organization
/// `org` (SQL expressions), whatever its status: one arm per partial index
/// (`contacts_campaign_due`, `contacts_active`, `contacts_campaign_finished`), which the
/// planner reads together (a bitmap OR); see [`any_open_contact_sql`] on why.
pub(crate) fn campaign_contacts_sql(campaign: &str, org: &str) -> String {
    format!(
        "campaign_id = {campaign} AND (status = 'queued'
             OR (org_id = {org} AND status IN ({IN_PROGRESS_STATUSES}))
             OR status IN ({FINISHED_STATUSES}))"
    )
}

impl Store {
    /// Attempt figures of `campaign` at `now`.
    ///
    /// Errors: database failures.
    pub async fn attempt_figures(
        &self,
        campaign: CampaignId,
        now: DateTime<Utc>,
    ) -> Result<AttemptFigures> {
        Ok(
            sqlx::query_as(sqlx::AssertSqlSafe(attempt_figures_sql("$1", "$2")))
                .bind(campaign.0)
                .bind(now)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Campaign `id` (with `org`, only if it belongs to that organization), its contact
    /// counts and its attempt figures at `now`, in one statement: the stats worker runs this
    /// for every campaign with calls ending, so it costs one round trip instead of three.
    ///
    /// Errors: [`StoreError::NotFound`] for an unknown campaign (or another organization's),
    /// database failures, a stored value that does not parse.
    pub async fn campaign_figures(
        &self,
        id: CampaignId,
        org: Option<OrgId>,
        now: DateTime<Utc>,
    ) -> Result<CampaignFigures> {
        let row: Option<CampaignFiguresRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS},
                    COALESCE((SELECT json_agg(s ORDER BY {COUNTS_ORDER}) FROM ({counts}) s), '[]') AS counts,
                    f.attempts, f.in_flight, f.answered, f.last_minute, f.first_at, f.last_at
             FROM campaigns k, LATERAL ({figures}) f
             WHERE k.id = $1 AND ($2::bigint IS NULL OR k.org_id = $2)",
            counts = contact_counts_sql("k.id", "k.org_id"),
            figures = attempt_figures_sql("k.id", "$3"),
        )))
        .bind(id.0)
        .bind(org.map(|o| o.0))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let row = row.ok_or_else(|| StoreError::not_found("campaign", id))?;
        Ok(CampaignFigures {
            campaign: row.campaign.try_into()?,
            counts: row.counts.0,
            attempts: row.attempts,
        })
    }

    /// Stores the latest stats snapshot (JSON) of a campaign.
    ///
    /// Errors: database failures.
    pub async fn save_campaign_stats(
        &self,
        campaign: CampaignId,
        snapshot: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // A snapshot is recomputed from the contacts at any time: committed asynchronously.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO campaign_stats (campaign_id, snapshot, updated_at)
             SELECT $1, $2, $3 FROM {ASYNC_COMMIT}
             ON CONFLICT (campaign_id) DO UPDATE SET snapshot = EXCLUDED.snapshot, updated_at = EXCLUDED.updated_at"
        )))
        .bind(campaign.0)
        .bind(snapshot)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest stored stats snapshot of a campaign, with its time.
    ///
    /// Errors: database failures.
    pub async fn campaign_stats(
        &self,
        campaign: CampaignId,
    ) -> Result<Option<(serde_json::Value, DateTime<Utc>)>> {
        Ok(
            sqlx::query_as(
                "SELECT snapshot, updated_at FROM campaign_stats WHERE campaign_id = $1",
            )
            .bind(campaign.0)
            .fetch_optional(&self.pool)
            .await?,
        )
    }

    /// Whether `campaign` still has contacts that are not finished (queued, locked, dialing,
    /// sending or sent). A voice campaign completes when this is false (SPEC §8).
    ///
    /// Errors: database failures.
    pub async fn campaign_has_open_contacts(&self, campaign: CampaignId) -> Result<bool> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {open} FROM campaigns WHERE id = $1",
            open = any_open_contact_sql("campaigns.id", "campaigns.org_id", "TRUE")
        )))
        .bind(campaign.0)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(false))
    }
}

/// Re-export for callers that build snapshots.
pub type Counts = Vec<StatusCount>;

#[cfg(test)]
mod tests {
    use outdial_domain::contact::ContactStatus;

    use super::{FINISHED_STATUSES, IN_PROGRESS_STATUSES, OPEN_STATUSES};

    fn list(sql: &str) -> Vec<&str> {
        sql.split(',')
            .map(|s| s.trim().trim_matches('\''))
            .collect()
    }

    /// The per-index status groups cover every status exactly once, so a campaign's
    /// contacts read through them (`campaign_contacts_sql`) are all of them, and the open
    /// ones (`any_open_contact_sql`) are exactly [`OPEN_STATUSES`].
    #[test]
    fn status_groups_partition_every_status() {
        let mut groups: Vec<&str> = std::iter::once("queued")
            .chain(list(IN_PROGRESS_STATUSES))
            .chain(list(FINISHED_STATUSES))
            .collect();
        groups.sort_unstable();
        let mut all: Vec<&str> = ContactStatus::ALL.iter().map(|s| s.as_str()).collect();
        all.sort_unstable();
        assert_eq!(groups, all);
        let mut open: Vec<&str> = std::iter::once("queued")
            .chain(list(IN_PROGRESS_STATUSES))
            .collect();
        open.sort_unstable();
        let mut expected = list(OPEN_STATUSES);
        expected.sort_unstable();
        assert_eq!(open, expected);
    }

    /// The partial indexes hold exactly the status groups the queries name: a query's arm
    /// that named a status its index does not hold would read the table instead.
    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn the_partial_indexes_hold_the_status_groups(pool: sqlx::PgPool) {
        for (index, group) in [
            ("contacts_active", IN_PROGRESS_STATUSES),
            ("contacts_campaign_finished", FINISHED_STATUSES),
        ] {
            let predicate: String = sqlx::query_scalar(
                "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1",
            )
            .bind(index)
            .fetch_one(&pool)
            .await
            .expect("index predicate");
            let mut held: Vec<&str> = predicate.split('\'').skip(1).step_by(2).collect();
            held.sort_unstable();
            let mut named = list(group);
            named.sort_unstable();
            assert_eq!(held, named, "{index}: {predicate}");
        }
    }
}
