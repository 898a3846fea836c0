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
//! A re-score is two statements: one read of the DID with its recent calls, and one
//! compare-and-set that stores the score (and the state change it calls for) only if the
//! DID's state and scoring start are still what was read — so a change made meanwhile (the
//! lifecycle job, another re-score) is never overwritten and a state change is applied once;
//! the re-score then runs again on the new state.

use std::sync::Arc;

use async_trait::async_trait;
use outdial_domain::DidId;
use outdial_domain::did::apply_health_action;
use outdial_domain::health::{HealthAction, SCORE_WINDOW, action, score};
use outdial_store::dids::{did_for_rescore, store_score_if_unchanged};
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
    /// Errors: Postgres failures; the DID changing state under each of three attempts in a
    /// row (the job retries).
    pub async fn rescore(&self, did: DidId) -> Result<Scored, JobError> {
        let mut conn = self.svc.store.pool().acquire().await?;
        for _ in 0..3 {
            if let Some(scored) = self.rescore_once(&mut conn, did).await? {
                drop(conn);
                self.publish(&scored).await;
                return Ok(scored);
            }
        }
        Err(JobError::retry(format!(
            "DID {did} changed during three re-scores in a row"
        )))
    }

    /// One read and one compare-and-set; `None` when the DID changed in between.
    async fn rescore_once(
        &self,
        conn: &mut sqlx::PgConnection,
        did_id: DidId,
    ) -> Result<Option<Scored>, JobError> {
        let now = self.svc.clock.now();
        let cfg = &self.svc.config.health;
        // Room for unscorable (invalid-number) calls, which the score skips.
        let (did, recent) = did_for_rescore(conn, did_id, (SCORE_WINDOW * 2) as i64).await?;
        let s = score(&recent);
        let act = action(&s, &cfg.thresholds());
        let change = apply_health_action(did.state, act, now, &cfg.lifecycle());
        if !store_score_if_unchanged(conn, &did, &s, change.as_ref(), now).await? {
            return Ok(None);
        }
        metrics::gauge!("outdial_did_health_score", "did" => did.e164.clone()).set(s.score);
        let state = change.map_or(did.state, |c| c.to);
        if did.state != state {
            tracing::info!(did = %did_id, e164 = %did.e164, score = s.score, from = %did.state, to = %state, "DID state changed");
        }
        Ok(Some(Scored {
            did_id,
            score: s.score,
            action: act,
            state,
        }))
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
