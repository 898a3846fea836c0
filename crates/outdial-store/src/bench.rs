//! Synthetic data and read-outs for `outdialctl bench dispatch` (docs/BENCHMARKS.md): a
//! million contacts across thousands of campaigns seeded in a few statements, as an import
//! would leave them, and the counts the benchmark reports.

use chrono::{DateTime, Utc};
use outdial_domain::CampaignId;

use crate::{Result, Store};

/// How much the dispatch benchmark seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispatchSeed {
    /// contacts, spread evenly over the campaigns
    pub contacts: i64,
    /// organizations (concurrency limit 100 each, two caller IDs each)
    pub orgs: i64,
    /// dialing voice campaigns, spread evenly over the organizations
    pub campaigns: i64,
    /// each campaign's calls per second
    pub cps: f64,
}

impl Store {
    /// Seeds `size` at `now` into an empty database: organizations with two DIDs each,
    /// campaigns already `dialing`, and contacts with valid, distinct NANP numbers over ten
    /// area codes in four US zones — each with its number's zone key (product §5.2), the
    /// campaign's zone keys and primary numbers as an import records them (product §11) —
    /// then `ANALYZE`.
    ///
    /// Errors: database failures (a non-empty database breaks unique keys).
    pub async fn seed_dispatch_benchmark(
        &self,
        size: &DispatchSeed,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let pool = &self.pool;
        sqlx::query(
            "INSERT INTO organizations (name, concurrency_limit, created_at)
             SELECT 'org' || g, 100, $2 FROM generate_series(1, $1) g",
        )
        .bind(size.orgs)
        .bind(now)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO dids (org_id, e164, state_changed_at, created_at)
             SELECT o.id, '+1212' || (2000000 + o.id * 2 + k)::text, $1, $1
             FROM organizations o CROSS JOIN generate_series(0, 1) k",
        )
        .bind(now)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO campaigns (org_id, name, channel, status, calls_per_second, window_start, window_end,
                                    created_at, started_at, updated_at)
             SELECT (SELECT min(id) FROM organizations) + (g - 1) % $2, 'campaign ' || g, 'voice', 'dialing', $3,
                    '08:00', '21:00', $4, $4, $4
             FROM generate_series(1, $1) g",
        )
        .bind(size.campaigns)
        .bind(size.orgs)
        .bind(size.cps)
        .bind(now)
        .execute(pool)
        .await?;
        sqlx::query(
            "WITH c AS (SELECT id, org_id, row_number() OVER (ORDER BY id) - 1 AS n FROM campaigns),
                  a AS (SELECT * FROM (VALUES (0, '212', 'America/New_York'), (1, '312', 'America/Chicago'),
                        (2, '415', 'America/Los_Angeles'), (3, '617', 'America/New_York'), (4, '713', 'America/Chicago'),
                        (5, '303', 'America/Denver'), (6, '206', 'America/Los_Angeles'), (7, '305', 'America/New_York'),
                        (8, '214', 'America/Chicago'), (9, '720', 'America/Denver')) AS v(k, area, tz))
             INSERT INTO contacts (org_id, campaign_id, phone_numbers, phone_timezones, timezone, retry_after,
                                   created_at, updated_at)
             SELECT c.org_id, c.id,
                    ARRAY['+1' || a.area || (200 + (g / 10000) % 800)::text || lpad((g % 10000)::text, 4, '0')],
                    ARRAY[a.tz], a.tz, $3, $3, $3
             FROM generate_series(0, $1 - 1) g
             JOIN c ON c.n = g % $2
             JOIN a ON a.k = g % 10",
        )
        .bind(size.contacts)
        .bind(size.campaigns)
        .bind(now)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO campaign_timezones (campaign_id, timezone)
             SELECT DISTINCT campaign_id, timezone FROM contacts",
        )
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO campaign_numbers (campaign_id, phone)
             SELECT campaign_id, phone_numbers[1] FROM contacts",
        )
        .execute(pool)
        .await?;
        sqlx::query("ANALYZE").execute(pool).await?;
        Ok(())
    }

    /// Every campaign's id, in order.
    ///
    /// Errors: database failures.
    pub async fn campaign_ids(&self) -> Result<Vec<CampaignId>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM campaigns ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(CampaignId).collect())
    }

    /// How many attempts started in `[from, to)`, and how many ended in it.
    ///
    /// Errors: database failures.
    pub async fn attempts_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT count(*) FILTER (WHERE created_at >= $1 AND created_at < $2),
                    count(*) FILTER (WHERE ended_at >= $1 AND ended_at < $2)
             FROM call_attempts",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?)
    }
}
