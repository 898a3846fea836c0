//! # outdial-stats
//!
//! The `campaign-stats` worker (product §2, §9): aggregates a campaign's contacts by status and
//! disposition, its attempts, answer rate, in-flight calls, achieved call rate and ETA;
//! stores the snapshot (served by `GET /api/campaigns/:id/stats`) and publishes it as
//! `campaign.stats.updated` on `campaign:<id>`.
//!
//! Throttling: aggregation requests are jobs with id `stats:<campaign>` due one throttle
//! period (1 s) after they are asked for; while one is pending, further requests are
//! absorbed by deduplication. So a campaign's stats are published at most once per period
//! however many calls end in it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use outdial_domain::CampaignId;
use outdial_domain::contact::ContactStatus;
use outdial_fleet::config::Config;
use outdial_fleet::events::{Event, names};
use outdial_fleet::jobs::StatsJob;
use outdial_fleet::services::Services;
use outdial_store::StoreError;
use outdial_worker::{Done, Handler, JobContext, JobError, Worker};
use serde::{Deserialize, Serialize};

/// A campaign's aggregate (the body of `campaign.stats.updated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignStats {
    /// the campaign aggregated; published on its `campaign:<id>` channel
    pub campaign_id: CampaignId,
    /// its status text, e.g. `dialing` (product §8)
    pub status: String,
    /// contacts in all
    pub contacts: i64,
    /// contact counts keyed by status text, e.g. `queued`
    pub by_status: BTreeMap<String, i64>,
    /// contacts by last disposition (or status reason for contacts never called)
    pub by_disposition: BTreeMap<String, i64>,
    /// contacts that will not be contacted again
    pub terminal: i64,
    /// attempts started
    pub attempts: i64,
    /// attempts not yet completed (no final callback or timeout yet)
    pub in_flight: i64,
    /// answered / completed attempts
    pub answer_rate: f64,
    /// attempts started in the last minute / 60
    pub achieved_cps: f64,
    /// attempts per second between the first and the last attempt
    pub average_cps: f64,
    /// seconds until the queued contacts are started at the last minute's rate
    pub eta_s: Option<f64>,
    /// when it was computed
    pub at: DateTime<Utc>,
}

/// The stats worker's handler.
#[derive(Debug)]
pub struct StatsAggregator {
    svc: Services,
}

impl StatsAggregator {
    /// An aggregator over `svc`.
    pub fn new(svc: Services) -> Self {
        Self { svc }
    }

    /// A worker on `campaign-stats` with the configured concurrency.
    pub fn worker(self: Arc<Self>) -> Worker<StatsJob, Self> {
        let cfg = self
            .svc
            .worker_config(self.svc.config.queues.stats_concurrency);
        Worker::new(
            self.svc.stats_queue.clone(),
            Arc::clone(&self),
            Arc::clone(&self.svc.clock),
            cfg,
        )
    }

    /// Aggregates `campaign` now, stores the snapshot and publishes `campaign.stats.updated`.
    ///
    /// Errors: [`StoreError::NotFound`] for an unknown campaign; Postgres failures.
    pub async fn aggregate(&self, campaign: CampaignId) -> Result<CampaignStats, StoreError> {
        let now = self.svc.clock.now();
        let store = &self.svc.store;
        let outdial_store::stats::CampaignFigures {
            campaign: c,
            counts,
            attempts: figures,
        } = store.campaign_figures(campaign, None, now).await?;
        let outdial_store::stats::Tally {
            by_status,
            by_outcome: by_disposition,
            total: contacts,
            open,
        } = outdial_store::stats::tally(&counts);
        let completed = figures.attempts - figures.in_flight;
        let achieved_cps = figures.last_minute as f64 / 60.0;
        let average_cps = match (figures.first_at, figures.last_at) {
            (Some(a), Some(b)) if b > a => {
                (figures.attempts - 1) as f64 / ((b - a).num_milliseconds() as f64 / 1_000.0)
            }
            _ => 0.0,
        };
        // Not yet in a call: due or admitted.
        let waiting: i64 = counts
            .iter()
            .filter(|r| matches!(r.status, ContactStatus::Queued | ContactStatus::Locked))
            .map(|r| r.count)
            .sum();
        let stats = CampaignStats {
            campaign_id: campaign,
            status: c.status.to_string(),
            contacts,
            by_status,
            by_disposition,
            terminal: contacts - open,
            attempts: figures.attempts,
            in_flight: figures.in_flight,
            answer_rate: if completed > 0 {
                figures.answered as f64 / completed as f64
            } else {
                0.0
            },
            achieved_cps,
            average_cps,
            eta_s: (achieved_cps > 0.0).then(|| waiting as f64 / achieved_cps),
            at: now,
        };
        let json = serde_json::to_value(&stats).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        store.save_campaign_stats(campaign, &json, now).await?;
        let event = Event::new(names::STATS_UPDATED, c.org_id, now)
            .campaign(campaign)
            .data(json);
        self.svc.events.publish(&event).await;
        metrics::counter!("outdial_stats_published_total").increment(1);
        Ok(stats)
    }
}

#[async_trait]
impl Handler<StatsJob> for StatsAggregator {
    async fn handle(&self, job: StatsJob, _ctx: JobContext) -> Result<Done<StatsJob>, JobError> {
        let StatsJob::Aggregate { campaign_id } = job;
        // An unknown campaign is a NotFound: dead-lettered at once; an outage is retried.
        self.aggregate(campaign_id).await?;
        Ok(Done::nothing())
    }
}

/// The `outdial-stats` process.
///
/// Errors: Postgres or Redis unreachable at start, the metrics address taken.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let svc = outdial_fleet::process::connect(config).await?;
    let worker = Arc::new(StatsAggregator::new(svc.clone())).worker();
    outdial_fleet::process::run_worker("outdial-stats", &svc, worker, shutdown).await
}
