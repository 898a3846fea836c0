//! # outdial-health
//!
//! The `campaign-health` worker (SPEC §2, §7). The statement that completes an attempt
//! writes its `did_health_events` row (exactly once, atomically with the completion) and the
//! dialer then asks for the caller ID to be re-scored; this worker does the re-scoring. A
//! re-score (job `rescore:<did>`, due `rescore_delay_ms` after the first request, absorbing
//! the requests that follow) scores the DID over its last 50
//! scored calls (only calls since its last cooldown ended count), stores the score and its
//! components, and applies the action: warning (event), cooldown (out of rotation for the
//! cooldown, `did.health.cooldown`) or burn (`did.health.burned`) — never before the minimum
//! sample of calls. Debouncing keeps the cost per DID, not per call, at high call rates.
//!
//! A re-score is one transaction holding the DID's row lock, so concurrent re-scores of one
//! DID run in turn and a state change is applied once.

use std::sync::Arc;

use async_trait::async_trait;
use outdial_domain::DidId;
use outdial_domain::did::apply_health_action;
use outdial_domain::health::{HealthAction, SCORE_WINDOW, action, score};
use outdial_store::dids::{lock_did, recent_calls, store_score};
use outdial_worker::config::Config;
use outdial_worker::events::{Event, names};
use outdial_worker::jobs::HealthJob;
use outdial_worker::services::Services;
use outdial_worker::{Done, Handler, JobContext, JobError, Worker};

/// The health worker's handler.
#[derive(Debug)]
pub struct HealthScorer {
    svc: Services,
}

/// What one scoring did.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// the DID
    pub did_id: DidId,
    /// its new score
    pub score: f64,
    /// the action the score called for
    pub action: HealthAction,
    /// its state after the action
    pub state: outdial_domain::did::DidState,
}

impl HealthScorer {
    /// A scorer over `svc`.
    pub fn new(svc: Services) -> Self {
        Self { svc }
    }

    /// A worker on `campaign-health` with the configured concurrency.
    pub fn worker(self: Arc<Self>) -> Worker<HealthJob, Self> {
        let cfg = self
            .svc
            .worker_config(self.svc.config.queues.health_concurrency);
        Worker::new(
            self.svc.health_queue.clone(),
            Arc::clone(&self),
            Arc::clone(&self.svc.clock),
            cfg,
        )
    }

    /// Re-scores DID `did` (after calls of it completed, or a spam flag).
    ///
    /// Errors: Postgres failures.
    pub async fn rescore(&self, did: DidId) -> Result<Scored, JobError> {
        let mut tx = self.svc.store.pool().begin().await?;
        let scored = self.rescore_in(&mut tx, did).await?;
        tx.commit().await?;
        self.publish(&scored).await;
        Ok(scored)
    }

    async fn rescore_in(
        &self,
        tx: &mut sqlx::PgConnection,
        did_id: DidId,
    ) -> Result<Scored, JobError> {
        let now = self.svc.clock.now();
        let cfg = &self.svc.config.health;
        let did = lock_did(tx, did_id).await?;
        // Room for unscorable (invalid-number) calls, which the score skips.
        let recent = recent_calls(tx, did_id, did.scored_since, (SCORE_WINDOW * 2) as i64).await?;
        let s = score(&recent);
        let act = action(&s, &cfg.thresholds());
        let change = apply_health_action(did.state, act, now, &cfg.lifecycle());
        store_score(tx, did_id, &s, change.as_ref(), now).await?;
        metrics::gauge!("outdial_did_health_score", "did" => did.e164.clone()).set(s.score);
        let state = change.map_or(did.state, |c| c.to);
        if did.state != state {
            tracing::info!(did = %did_id, e164 = %did.e164, score = s.score, from = %did.state, to = %state, "DID state changed");
        }
        Ok(Scored {
            did_id,
            score: s.score,
            action: act,
            state,
        })
    }

    async fn publish(&self, s: &Scored) {
        let event_type = match s.action {
            HealthAction::Cooldown if s.state == outdial_domain::did::DidState::Cooling => {
                names::DID_COOLDOWN
            }
            HealthAction::Burn if s.state == outdial_domain::did::DidState::Burned => {
                names::DID_BURNED
            }
            HealthAction::Warning => names::DID_WARNING,
            _ => return,
        };
        let Ok(did) = self.svc.store.did(s.did_id, None).await else {
            return;
        };
        let event = Event::new(event_type, did.org_id, self.svc.clock.now())
            .did(s.did_id)
            .data(serde_json::json!({ "e164": did.e164, "score": s.score, "state": s.state, "cooldown_until": did.cooldown_until }));
        self.svc.events.publish(&event).await;
    }
}

#[async_trait]
impl Handler<HealthJob> for HealthScorer {
    async fn handle(&self, job: HealthJob, _ctx: JobContext) -> Result<Done<HealthJob>, JobError> {
        match job {
            HealthJob::Rescore { did_id } => {
                self.rescore(did_id).await?;
            }
        }
        Ok(Done::nothing())
    }
}

/// The `outdial-health` process.
///
/// Errors: Postgres or Redis unreachable at start, the metrics address taken.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let svc = outdial_worker::process::connect(config).await?;
    let worker = Arc::new(HealthScorer::new(svc.clone())).worker();
    outdial_worker::process::run_worker("outdial-health", &svc, worker, shutdown).await
}
