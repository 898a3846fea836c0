//! # outdial-health
//!
//! The `campaign-health` worker (product §2, §7). The statement that completes an attempt
//! writes its `did_health_events` row (exactly once, atomically with the completion) and the
//! dialer then asks for the caller ID to be re-scored; this worker does the re-scoring. A
//! re-score (job `rescore:<did>`, due `rescore_delay_ms` after the first request, absorbing
//! the requests that follow) scores the DID over its last 50
//! scored calls (only calls since its last cooldown ended count), stores the score and its
//! components, and applies the action: warning (event), cooldown (out of rotation for the
//! cooldown, `did.health.cooldown`) or burn (`did.health.burned`) — never before the minimum
//! sample of calls. Debouncing keeps the cost per DID, not per call, at high call rates.
//!
//! A re-score is a read of the DID with its recent calls and a compare-and-set that stores
//! the score (and the state change it calls for) only if the DID's state and scoring start
//! are still what was read — so a change made meanwhile (the lifecycle job, another
//! re-score) is never overwritten and a state change is applied once; the re-score then
//! runs again on the new state. Re-scores are group-committed
//! (`outdial_fleet::batch`, `health.write_gather_ms`): the DIDs re-scored close together
//! are read by one statement, and their scores that change no state are stored by one
//! asynchronously committed compare-and-set; a state change is stored on its own,
//! synchronously.

use std::sync::Arc;

use async_trait::async_trait;
use outdial_domain::DidId;
use outdial_domain::did::apply_health_action;
use outdial_domain::health::{HealthAction, SCORE_WINDOW, action, score};
use outdial_fleet::batch::{BatchResult, Batcher};
use outdial_fleet::config::Config;
use outdial_fleet::events::{Event, names};
use outdial_fleet::jobs::HealthJob;
use outdial_fleet::services::Services;
use outdial_store::StoreError;
use outdial_store::dids::{dids_for_rescore, store_score_if_unchanged, store_scores_if_unchanged};
use outdial_worker::{Done, Handler, JobContext, JobError, Worker};

/// The health worker's handler.
#[derive(Debug)]
pub struct HealthScorer {
    svc: Services,
    /// Re-scores, group-committed: DID → its scoring, or `None` when the DID changed
    /// between the read and the compare-and-set.
    rescores: Batcher<DidId, Option<Scored>>,
}

/// What one scoring did.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// the re-scored DID
    pub did_id: DidId,
    /// its new score in `[0, 1]`, stored as `health_score`
    pub score: f64,
    /// the action the score called for
    pub action: HealthAction,
    /// its state after the action
    pub state: outdial_domain::did::DidState,
}

impl HealthScorer {
    /// A scorer over `svc`.
    pub fn new(svc: Services) -> Self {
        let batch_svc = svc.clone();
        let rescores = Batcher::new(
            "rescores",
            svc.config.health.write_gather_ms,
            move |dids: Vec<DidId>| {
                let svc = batch_svc.clone();
                async move { rescore_batch(&svc, &dids).await }
            },
        );
        Self { svc, rescores }
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
        for _ in 0..3 {
            if let Some(scored) = self.rescores.submit(did).await? {
                self.publish(&scored).await;
                return Ok(scored);
            }
        }
        Err(JobError::retry(format!(
            "DID {did} changed during three re-scores in a row"
        )))
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

/// Re-scores `dids` (module docs): one read for all, the scores, one compare-and-set for the
/// scores that change no state and one for each state change. One result per DID, in
/// order: its scoring, `None` when it changed since the read, or its own read error.
///
/// Errors: Postgres failures, for the batch (the batcher then re-scores each DID alone).
async fn rescore_batch(svc: &Services, dids: &[DidId]) -> BatchResult<Option<Scored>> {
    let now = svc.clock.now();
    let cfg = &svc.config.health;
    let mut conn = svc.store.pool().acquire().await?;
    // Room for unscorable (invalid-number) calls, which the score skips.
    let reads = dids_for_rescore(&mut conn, dids, (SCORE_WINDOW * 2) as i64).await?;
    let mut results: Vec<Result<Option<Scored>, StoreError>> = Vec::with_capacity(dids.len());
    let mut score_only = Vec::new();
    for read in reads {
        let (did, recent) = match read {
            Ok(r) => r,
            Err(e) => {
                results.push(Err(e));
                continue;
            }
        };
        let s = score(&recent);
        let act = action(&s, &cfg.thresholds());
        let change = apply_health_action(did.state, act, now, &cfg.lifecycle());
        let scored = Scored {
            did_id: did.id,
            score: s.score,
            action: act,
            state: change.as_ref().map_or(did.state, |c| c.to),
        };
        match change {
            Some(c) => {
                let stored = store_score_if_unchanged(&mut conn, &did, &s, Some(&c), now).await?;
                if stored {
                    tracing::info!(did = %did.id, e164 = %did.e164, score = s.score, from = %did.state, to = %c.to, "DID state changed");
                    metrics::gauge!("outdial_did_health_score", "did" => did.e164.to_string())
                        .set(s.score);
                }
                results.push(Ok(stored.then_some(scored)));
            }
            None => {
                score_only.push((results.len(), did, s, scored));
                results.push(Ok(None)); // set below once stored
            }
        }
    }
    if !score_only.is_empty() {
        let items: Vec<_> = score_only
            .iter()
            .map(|(_, did, s, _)| (did.clone(), *s))
            .collect();
        let stored = store_scores_if_unchanged(&mut conn, &items).await?;
        for ((i, did, s, scored), ok) in score_only.into_iter().zip(stored) {
            if ok {
                metrics::gauge!("outdial_did_health_score", "did" => did.e164.to_string())
                    .set(s.score);
                results[i] = Ok(Some(scored));
            }
        }
    }
    Ok(results)
}

/// The `outdial-health` process.
///
/// Errors: Postgres or Redis unreachable at start, the metrics address taken.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let svc = outdial_fleet::process::connect(config).await?;
    let worker = Arc::new(HealthScorer::new(svc.clone())).worker();
    outdial_fleet::process::run_worker("outdial-health", &svc, worker, shutdown).await
}
