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
/// `status, disposition, reason, count`), for the campaign id given by the SQL expression
/// `campaign` (a parameter like `$1`, or a column of an outer query). Unordered; order by
/// [`COUNTS_ORDER`]. The one text behind [`Store::contact_counts`] and
/// [`Store::campaign_figures`].
pub(crate) fn contact_counts_sql(campaign: &str) -> String {
    format!(
        "SELECT status, disposition, status_reason AS reason, count(*) AS count FROM contacts
         WHERE campaign_id = {campaign} GROUP BY status, disposition, status_reason"
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

/// The contact statuses that are not finished (SQL list): a campaign with a contact in one
/// of them is not complete (SPEC §8).
pub(crate) const OPEN_STATUSES: &str = "'queued', 'locked', 'dialing', 'sending', 'sent'";

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
            counts = contact_counts_sql("k.id"),
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
        Ok(sqlx::query_scalar(
            sqlx::AssertSqlSafe(format!("SELECT EXISTS (SELECT 1 FROM contacts WHERE campaign_id = $1 AND status IN ({OPEN_STATUSES}))")),
        )
        .bind(campaign.0)
        .fetch_one(&self.pool)
        .await?)
    }
}

/// Re-export for callers that build snapshots.
pub type Counts = Vec<StatusCount>;
