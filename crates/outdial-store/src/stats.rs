//! Campaign aggregates (product §9) and their stored snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use outdial_domain::contact::{ContactStatus, Disposition, EndReason};
use outdial_domain::{CampaignId, OrgId};
use serde::{Deserialize, Serialize};

use crate::campaigns::{CAMPAIGN_COLUMNS, Campaign, CampaignRow};
use crate::statuses::{any_open_contact_sql, campaign_contacts_sql};
use crate::{ASYNC_COMMIT, Result, Store, StoreError, corrupt, parse_stored};

/// How many of a campaign's contacts have one status, disposition and end reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCount {
    /// the status the counted contacts share
    pub status: ContactStatus,
    /// their last attempt's disposition (`None` before an attempt ended)
    pub disposition: Option<Disposition>,
    /// why they ended without a call, if they did
    pub reason: Option<EndReason>,
    /// how many
    pub count: i64,
}

impl StatusCount {
    /// What became of these contacts, in a word: their disposition, else the reason they
    /// ended without a call, else `none` (nothing ended yet).
    pub fn outcome(&self) -> &'static str {
        match (self.disposition, self.reason) {
            (Some(d), _) => d.as_str(),
            (None, Some(r)) => r.as_str(),
            (None, None) => "none",
        }
    }
}

/// A campaign's contact counts summed up ([`tally`]): by status, by outcome
/// ([`StatusCount::outcome`]), in all and still open.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tally {
    /// contacts per status (its stored text)
    pub by_status: BTreeMap<String, i64>,
    /// contacts per outcome
    pub by_outcome: BTreeMap<String, i64>,
    /// contacts in all
    pub total: i64,
    /// contacts not finished ([`ContactStatus::is_open`])
    pub open: i64,
}

/// Sums `counts` up: the one tally behind the stats snapshot, `outdialctl campaign status`
/// and the demo's summary.
pub fn tally(counts: &[StatusCount]) -> Tally {
    let mut t = Tally::default();
    for r in counts {
        *t.by_status.entry(r.status.to_string()).or_default() += r.count;
        *t.by_outcome.entry(r.outcome().to_owned()).or_default() += r.count;
        t.total += r.count;
        if r.status.is_open() {
            t.open += r.count;
        }
    }
    t
}

#[derive(sqlx::FromRow)]
struct StatusCountRow {
    status: String,
    disposition: Option<String>,
    reason: Option<String>,
    count: i64,
}

impl TryFrom<StatusCountRow> for StatusCount {
    type Error = StoreError;
    fn try_from(r: StatusCountRow) -> Result<Self> {
        Ok(Self {
            status: r.status.parse().map_err(corrupt)?,
            disposition: parse_stored(r.disposition)?,
            reason: parse_stored(r.reason)?,
            count: r.count,
        })
    }
}

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

/// What a campaign's stats are computed from (product §9), read together by
/// [`Store::campaign_figures`].
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignFigures {
    /// its row, read in the same statement as the counts
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
fn contact_counts_sql(campaign: &str, org: &str) -> String {
    format!(
        "SELECT status, disposition, status_reason AS reason, count(*) AS count FROM contacts
         WHERE {all} GROUP BY status, disposition, status_reason",
        all = campaign_contacts_sql(campaign, org),
    )
}

/// The order of [`contact_counts_sql`]'s rows (its output names).
const COUNTS_ORDER: &str = "status, disposition NULLS FIRST, reason NULLS FIRST";

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

impl Store {
    /// A campaign's contacts counted by status, disposition and status reason, ordered by
    /// status, then disposition, then reason.
    ///
    /// Errors: database failures, a stored status that does not parse.
    pub async fn contact_counts(&self, campaign: CampaignId) -> Result<Vec<StatusCount>> {
        let rows: Vec<StatusCountRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{} ORDER BY {COUNTS_ORDER}",
            contact_counts_sql("$1", "(SELECT org_id FROM campaigns WHERE id = $1)"),
        )))
        .bind(campaign.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

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
    /// sending or sent). A voice campaign completes when this is false (product §8).
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
