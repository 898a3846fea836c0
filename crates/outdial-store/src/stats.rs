//! Campaign aggregates (SPEC §9) and their stored snapshot.

use chrono::{DateTime, Utc};
use outdial_domain::CampaignId;
use serde::{Deserialize, Serialize};

use crate::contacts::StatusCount;
use crate::{ASYNC_COMMIT, Result, Store};

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
        Ok(sqlx::query_as(
            "SELECT count(*) AS attempts,
                    count(*) FILTER (WHERE status <> 'completed') AS in_flight,
                    count(*) FILTER (WHERE disposition IN ('human_connected', 'human_hangup', 'voicemail')) AS answered,
                    count(*) FILTER (WHERE created_at > $2 - interval '60 seconds' AND created_at <= $2) AS last_minute,
                    min(created_at) AS first_at, max(created_at) AS last_at
             FROM call_attempts WHERE campaign_id = $1",
        )
        .bind(campaign.0)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
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
