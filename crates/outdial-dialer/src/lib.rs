//! # outdial-dialer
//!
//! The `campaign-dialer` worker (product §2, §4, §5): every job of that queue is handled here.
//!
//! | job | module | what |
//! |---|---|---|
//! | `Dispatch` (queue `campaign-dispatch`) | [`dispatch`] | fleet-wide cycle every poll interval: sweep stale locks, compute eligible zones, allocate slots across organizations, admit contacts (global + org + channel slot together) |
//! | `VoiceTick` | [`voice`] | a campaign's pacer: one admitted contact per tick, ticks every `1000 / cps` ms on a fixed grid |
//! | `StartContact` | [`voice`] | starts an admitted direct call |
//! | `Originate`, `CallStatus`, `CallTimeout` | [`calls`] | carrier call, webhook outcome, durable 30-minute timeout — the attempt ends exactly once |
//! | `SmsTick`, `SmsSend`, `SmsStatus`, `SmsTimeout` | [`sms`] | the SMS drip (one prospect per tick, every gap ÷ usable DIDs), the send, delivery receipts, the delivery timeout |
//! | `Maintenance`, `DidLifecycle` | [`maintenance`] | channel lease renewal, Redis ↔ Postgres reconciliation, DID cooldown/warming |
//!
//! Beside the jobs, every dialer process runs a [`keeper::Keeper`] on a local timer: it keeps
//! the singleton jobs in existence and reconciles at once when Redis lost its data.
//!
//! `campaigns` is the home of what the ticks and completion share about a campaign (its
//! auto-pause, its completion, an idle tick's wake-up). Campaign status changes, the shared
//! effects (channels, stats) and the dispatch cycle's planning come from `outdial-control`,
//! which the API and `outdialctl` use too. [`run`] is the binary's whole life: connect,
//! bootstrap, serve `/metrics`, work until shutdown.

pub mod calls;
mod campaigns;
pub mod dispatch;
pub mod keeper;
pub mod maintenance;
pub mod sms;
pub mod voice;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use outdial_carrier::{MessagingProvider, TwilioRest, VoiceProvider};
use outdial_clock::Clock;
use outdial_control::dispatch::Planner;
use outdial_domain::AttemptId;
use outdial_fleet::batch::Batcher;
use outdial_fleet::config::Config;
use outdial_fleet::jobs::DialerJob;
use outdial_fleet::services::Services;
use outdial_queue::NewJob;
use outdial_store::dialing::{AttemptOutcome, Completion};
use outdial_worker::{Done, Handler, JobContext, JobError, Worker};

/// The dialer: services plus the carrier it dials through.
pub struct Dialer {
    svc: Services,
    voice: Arc<dyn VoiceProvider>,
    /// Texts go through this provider (SMS sends).
    sms: Arc<dyn MessagingProvider>,
    /// The dispatch cycle's own connections (`dialer.dispatch_connections`), created on
    /// first use from the main pool's connect options.
    dispatch_pool: std::sync::OnceLock<sqlx::PgPool>,
    /// The dispatch cycle's planning, with the settings of the dialing campaigns as of
    /// their row versions: the cycle and the voice ticks re-read only the rows that changed.
    planner: Planner,
    /// Call completions, group-committed (`dialer.write_gather_ms`): `(attempt,
    /// outcome, when it ended)` → [`outdial_store::Store::complete_attempts`].
    completions: Batcher<(AttemptId, AttemptOutcome, DateTime<Utc>), Option<Completion>>,
    /// Carriers' call ids, group-committed the same way: `(attempt, call SID)` →
    /// [`outdial_store::Store::record_call_sids`].
    call_sids: Batcher<(AttemptId, String), ()>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer").finish_non_exhaustive()
    }
}

impl Dialer {
    /// A dialer over `svc` placing calls through `voice` and texts through `sms`.
    pub fn new(
        svc: Services,
        voice: Arc<dyn VoiceProvider>,
        sms: Arc<dyn MessagingProvider>,
    ) -> Self {
        let gather_ms = svc.config.dialer.write_gather_ms;
        let store = svc.store.clone();
        let completions = Batcher::new("completions", gather_ms, move |batch: Vec<_>| {
            let store = store.clone();
            async move { store.complete_attempts(&batch).await }
        });
        let store = svc.store.clone();
        let call_sids = Batcher::new("call_sids", gather_ms, move |batch: Vec<_>| {
            let store = store.clone();
            async move { store.record_call_sids(&batch).await }
        });
        Self {
            planner: Planner::new(svc.clone()),
            svc,
            voice,
            sms,
            dispatch_pool: std::sync::OnceLock::new(),
            completions,
            call_sids,
        }
    }

    /// A dialer using the Twilio-compatible REST carrier of `svc.config.carrier`.
    ///
    /// Errors: the carrier client cannot be built (bad base URL).
    pub fn with_rest_carrier(svc: Services) -> anyhow::Result<Self> {
        let c = &svc.config.carrier;
        let rest = Arc::new(TwilioRest::new(
            &c.base_url,
            &c.account_sid,
            c.auth_token.expose(),
            std::time::Duration::from_millis(c.timeout_ms),
        )?);
        Ok(Self::new(
            svc,
            Arc::clone(&rest) as Arc<dyn VoiceProvider>,
            rest,
        ))
    }

    /// The connections, configuration and clock this dialer runs on.
    pub fn services(&self) -> &Services {
        &self.svc
    }

    /// The dispatch cycle's planning (and `dispatch explain`), with this dialer's cache of
    /// campaign settings.
    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    fn clock(&self) -> &dyn Clock {
        &*self.svc.clock
    }

    /// The dispatch cycle's pool: `dialer.dispatch_connections` connections (at least two:
    /// a cycle holds its transaction while it reads the campaigns on a second one) apart
    /// from the handlers' pool, so a cycle never waits for a connection behind dozens of
    /// jobs. Connections open on first use and close after a minute idle (a dialer that
    /// never runs a cycle holds none).
    fn dispatch_pool(&self) -> &sqlx::PgPool {
        self.dispatch_pool.get_or_init(|| {
            outdial_store::pool_options(self.svc.config.dialer.dispatch_connections.max(2))
                .idle_timeout(std::time::Duration::from_secs(60))
                .connect_lazy_with((*self.svc.store.pool().connect_options()).clone())
        })
    }

    /// Makes sure the fleet-wide singleton jobs exist: the dispatch cycle, maintenance and
    /// the DID lifecycle job. Idempotent (deduplicated by id): every dialer calls it at start.
    ///
    /// Errors: Redis failures.
    pub async fn bootstrap(&self) -> Result<(), outdial_queue::QueueError> {
        let now = self.clock().now_ms();
        let jobs: Vec<NewJob<DialerJob>> = vec![
            DialerJob::Dispatch.at(now),
            DialerJob::Maintenance.at(now),
            DialerJob::DidLifecycle.at(now),
        ];
        self.svc.dispatch_queue.enqueue(&jobs, now).await?;
        Ok(())
    }

    /// A worker running this dialer on `campaign-dialer` with the configured concurrency.
    pub fn worker(self: Arc<Self>) -> Worker<DialerJob, Self> {
        let cfg = self
            .svc
            .worker_config(self.svc.config.queues.dialer_concurrency);
        Worker::new(
            self.svc.dialer_queue.clone(),
            Arc::clone(&self),
            Arc::clone(&self.svc.clock),
            cfg,
        )
    }

    /// A worker running this dialer's control jobs on `campaign-dispatch` (two at once: a
    /// dispatch cycle and maintenance can overlap).
    pub fn control_worker(self: Arc<Self>) -> Worker<DialerJob, Self> {
        let cfg = self.svc.worker_config(2);
        Worker::new(
            self.svc.dispatch_queue.clone(),
            Arc::clone(&self),
            Arc::clone(&self.svc.clock),
            cfg,
        )
    }
}

#[async_trait]
impl Handler<DialerJob> for Dialer {
    async fn handle(&self, job: DialerJob, ctx: JobContext) -> Result<Done<DialerJob>, JobError> {
        match job {
            DialerJob::Dispatch => self.dispatch_job(&ctx).await,
            DialerJob::VoiceTick {
                campaign_id,
                planned_us,
            } => self.voice_tick(campaign_id, planned_us, &ctx).await,
            DialerJob::StartContact { contact_id } => self.start_direct(contact_id).await,
            DialerJob::Originate { attempt_id } => self.originate(attempt_id).await,
            DialerJob::CallStatus {
                attempt_id,
                call_sid,
                call_status,
                call_duration_s,
                answered_by,
                sip_response_code,
                spam_flagged,
            } => {
                let cb = outdial_carrier::callback::CallStatusCallback {
                    call_sid,
                    call_status,
                    call_duration_s,
                    answered_by,
                    sip_response_code,
                    spam_flagged,
                };
                self.call_status(attempt_id, cb).await
            }
            DialerJob::CallTimeout { attempt_id } => self.call_timeout(attempt_id).await,
            DialerJob::Maintenance => self.maintenance(&ctx).await,
            DialerJob::DidLifecycle => self.did_lifecycle(&ctx).await,
            DialerJob::SmsTick { campaign_id } => self.sms_tick(campaign_id, &ctx).await,
            DialerJob::SmsSend { contact_id } => self.sms_send(contact_id).await,
            DialerJob::SmsStatus {
                contact_id,
                message_sid,
                message_status,
                error_code,
            } => {
                self.sms_status(contact_id, &message_sid, &message_status, error_code)
                    .await
            }
            DialerJob::SmsTimeout { contact_id } => self.sms_timeout(contact_id).await,
        }
    }
}

/// The `outdial-dialer` process: connects, runs the [`keeper::Keeper`] (whose first step
/// bootstraps the singleton jobs), serves `/metrics` and works `campaign-dialer` until
/// `shutdown` resolves.
///
/// Errors: Postgres or Redis unreachable at start, the metrics address taken.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let svc = outdial_fleet::process::connect(config).await?;
    let dialer = Arc::new(Dialer::with_rest_carrier(svc.clone())?);
    let mut keeper = keeper::Keeper::new(Arc::clone(&dialer));
    keeper.step().await?;
    let control = Arc::clone(&dialer).control_worker();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut keeper_stop = stop_rx.clone();
    let keeper_run = tokio::spawn(keeper.run(async move {
        let _ = keeper_stop.wait_for(|s| *s).await;
    }));
    let client = svc.redis_client.clone();
    let control_run = tokio::spawn(control.run(Some(client), async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let worker = Arc::clone(&dialer).worker();
    let result = outdial_fleet::process::run_worker("outdial-dialer", &svc, worker, shutdown).await;
    let _ = stop_tx.send(true);
    control_run.await??;
    keeper_run.await?;
    result
}
