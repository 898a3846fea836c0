//! # outdial-e2e
//!
//! End-to-end scenarios on the real Postgres and Redis, with the carrier simulator as the
//! only stand-in (a real HTTP peer).
//!
//! [`InProcess`] runs the dialer, health and stats workers, the API and the simulator in
//! this process on one [`ManualClock`], and drives the workers step by step
//! ([`InProcess::quiesce`] runs every due job until nothing is due and no simulated call is
//! in flight), so scenarios are deterministic: time only moves when a test moves it.
//! The multi-process scenarios start the real binaries with `outdialctl::fleet`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outdial_carrier_sim::{SimConfig, SimStats};
use outdial_clock::{Clock, ManualClock};
use outdial_control::spec::CampaignSpec;
use outdial_dialer::Dialer;
use outdial_domain::{CampaignId, OrgId};
use outdial_fleet::config::Config;
use outdial_fleet::jobs::{DialerJob, HealthJob, StatsJob};
use outdial_fleet::services::Services;
use outdial_health::HealthScorer;
use outdial_stats::StatsAggregator;
use outdial_store::contacts::ImportReport;
use outdial_test_support::{TestDb, TestRedis};
use outdial_worker::{Outcome, Worker};
use tokio::sync::watch;

/// `raw` as an E.164 number.
///
/// # Panics
/// When `raw` is not a valid number (a test's constant).
pub fn e164(raw: &str) -> outdial_domain::phone::E164 {
    outdial_domain::phone::E164::parse(raw).expect("a valid test number")
}

/// A Wednesday afternoon in the US: every zone's calling window is open.
pub fn t0() -> DateTime<Utc> {
    "2026-07-01T18:00:00Z"
        .parse()
        .expect("a valid constant timestamp")
}

/// The whole engine in one process on a manual clock.
pub struct InProcess {
    /// per-test database (dropped at the end)
    pub db: TestDb,
    /// per-test Redis prefix (keys deleted at the end)
    pub redis: TestRedis,
    /// the clock every component reads
    pub clock: ManualClock,
    /// the services every component shares
    pub svc: Services,
    /// the dialer both dialer workers run (REST carrier on the simulator)
    pub dialer: Arc<Dialer>,
    /// `campaign-dialer` worker (ticks, starts, originates, callbacks, timeouts)
    pub dialer_worker: Worker<DialerJob, Dialer>,
    /// `campaign-dispatch` worker (dispatch cycle, maintenance, DID lifecycle)
    pub dispatch_worker: Worker<DialerJob, Dialer>,
    /// `campaign-health` worker (DID re-scores)
    pub health_worker: Worker<HealthJob, HealthScorer>,
    /// `campaign-stats` worker (stats aggregations)
    pub stats_worker: Worker<StatsJob, StatsAggregator>,
    /// the simulator's base URL
    pub sim_url: String,
    /// the API's base URL
    pub api_url: String,
    /// HTTP client for the API and the simulator
    pub http: reqwest::Client,
    stop: StopOnDrop,
}

impl InProcess {
    /// Starts everything; `tweak` adjusts the configuration and the simulator first (the
    /// simulator is `instant` by default: callbacks follow at once).
    ///
    /// # Panics
    /// When a service is unreachable.
    pub async fn start(tweak: impl FnOnce(&mut Config, &mut SimConfig)) -> Self {
        Self::start_at(t0(), tweak).await
    }

    /// [`InProcess::start`] with the clock starting at `at`.
    ///
    /// # Panics
    /// When a service is unreachable.
    pub async fn start_at(
        at: DateTime<Utc>,
        tweak: impl FnOnce(&mut Config, &mut SimConfig),
    ) -> Self {
        let db = TestDb::new(&outdial_store::MIGRATOR).await;
        let redis = TestRedis::new().await;
        let clock = ManualClock::new(at);
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sim");
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind api");
        let sim_url = format!("http://{}", sim_listener.local_addr().expect("addr"));
        let api_url = format!("http://{}", api_listener.local_addr().expect("addr"));
        let mut config = Config::default();
        config.redis.url = redis.url.clone();
        config.redis.prefix = redis.prefix.clone();
        config.postgres.url = db.url.clone();
        config.carrier.base_url = sim_url.clone();
        config.api.public_url = api_url.clone();
        config.dialer.window_jitter_ms = 0;
        let mut sim = SimConfig {
            instant: true,
            seed: Some(7),
            ..SimConfig::default()
        };
        tweak(&mut config, &mut sim);
        sim.auth_token = config.carrier.auth_token.expose().to_owned();
        sim.account_sid = config.carrier.account_sid.clone();

        let svc = Services::from_parts(
            config,
            outdial_store::Store::new(db.pool.clone()),
            redis.pool.clone(),
            redis.client.clone(),
            Arc::new(clock.clone()),
        );
        let (stop, stop_rx) = watch::channel(false);
        let wait = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tokio::spawn(outdial_carrier_sim::serve(
            sim_listener,
            sim,
            wait(stop_rx.clone()),
        ));
        tokio::spawn(outdial_api::serve(
            api_listener,
            svc.clone(),
            wait(stop_rx.clone()),
        ));
        let dialer = Arc::new(Dialer::with_rest_carrier(svc.clone()).expect("dialer"));
        dialer.bootstrap().await.expect("bootstrap singleton jobs");
        let dialer_worker = Arc::clone(&dialer).worker();
        let dispatch_worker = Arc::clone(&dialer).control_worker();
        let health_worker = Arc::new(HealthScorer::new(svc.clone())).worker();
        let stats_worker = Arc::new(StatsAggregator::new(svc.clone())).worker();
        Self {
            db,
            redis,
            clock,
            svc,
            dialer,
            dialer_worker,
            dispatch_worker,
            health_worker,
            stats_worker,
            sim_url,
            api_url,
            http: reqwest::Client::new(),
            stop: StopOnDrop(stop),
        }
    }

    /// An organization with `limit` and caller IDs `dids` (E.164).
    pub async fn org(&self, name: &str, limit: i32, dids: &[&str]) -> OrgId {
        let org = self
            .svc
            .store
            .create_org(name, Some(limit), self.clock.now())
            .await
            .expect("org");
        for d in dids {
            self.svc
                .store
                .create_did(org.id, &e164(d), self.clock.now())
                .await
                .expect("did");
        }
        org.id
    }

    /// A bearer token of `org` with `scopes`.
    pub async fn token(&self, org: OrgId, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.svc
            .store
            .create_token(org, "test", &scopes, self.clock.now())
            .await
            .expect("token")
            .1
    }

    /// A campaign of `org` from `spec`.
    pub async fn campaign(&self, org: OrgId, spec: CampaignSpec) -> CampaignId {
        let new = spec
            .into_new(org, &self.svc.config.channels)
            .expect("valid spec");
        self.svc
            .store
            .create_campaign(&new, self.clock.now())
            .await
            .expect("campaign")
            .id
    }

    /// A campaign of `org` from `spec`, with `csv` imported, started (actor `test`).
    ///
    /// # Panics
    /// When the spec is invalid or a step fails.
    pub async fn started_campaign(&self, org: OrgId, spec: CampaignSpec, csv: &str) -> CampaignId {
        let c = self.campaign(org, spec).await;
        self.import(org, c, csv).await;
        outdial_control::transition::apply(
            &self.svc,
            c,
            Some(org),
            outdial_domain::campaign::CampaignCommand::Start,
            "test",
            None,
        )
        .await
        .expect("start");
        c
    }

    /// [`InProcess::run_until`] every campaign in `ids` is `completed`.
    ///
    /// # Panics
    /// When one is not completed after `max_steps` steps.
    pub async fn run_until_completed(
        &self,
        ids: &[CampaignId],
        step_max_ms: i64,
        max_steps: usize,
    ) {
        let store = self.svc.store.clone();
        let ids = ids.to_vec();
        self.run_until(step_max_ms, max_steps, || {
            let (store, ids) = (store.clone(), ids.clone());
            async move {
                for id in ids {
                    let status = store.campaign(id, None).await.expect("campaign").status;
                    if status != outdial_domain::campaign::CampaignStatus::Completed {
                        return false;
                    }
                }
                true
            }
        })
        .await;
    }

    /// Imports `csv` into `campaign`.
    pub async fn import(&self, org: OrgId, campaign: CampaignId, csv: &str) -> ImportReport {
        outdial_control::import::import_contacts(
            &self.svc,
            org,
            campaign,
            "test.csv",
            csv.as_bytes(),
        )
        .await
        .expect("import")
    }

    /// Another dialer on the same Postgres, Redis prefix, carrier and clock, with its own
    /// Postgres and Redis connection pools — what a second dialer pod is — and its
    /// `campaign-dialer` worker.
    ///
    /// # Panics
    /// When a service is unreachable.
    pub async fn extra_dialer(&self) -> (Arc<Dialer>, Worker<DialerJob, Dialer>) {
        let pg = sqlx::postgres::PgPoolOptions::new()
            .max_connections(5)
            .connect(&self.db.url)
            .await
            .expect("postgres");
        let redis = outdial_queue::pool::pool(&self.redis.url, 16).expect("redis pool");
        let svc = Services::from_parts(
            (*self.svc.config).clone(),
            outdial_store::Store::new(pg),
            redis,
            self.redis.client.clone(),
            Arc::new(self.clock.clone()),
        );
        let dialer = Arc::new(Dialer::with_rest_carrier(svc).expect("dialer"));
        let worker = Arc::clone(&dialer).worker();
        (dialer, worker)
    }

    /// Scripts the simulator's outcomes for calls to `number`, in order.
    pub async fn script(&self, number: &str, outcomes: &[&str]) {
        let body = serde_json::json!({ number: outcomes });
        let r = self
            .http
            .post(format!("{}/sim/script", self.sim_url))
            .json(&body)
            .send()
            .await
            .expect("script");
        assert!(r.status().is_success(), "script: {}", r.status());
    }

    /// `GET /sim/stats`: the simulator's counters.
    pub async fn sim_stats(&self) -> SimStats {
        self.http
            .get(format!("{}/sim/stats", self.sim_url))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }

    /// Every call the simulator received.
    pub async fn sim_calls(&self) -> Vec<outdial_carrier_sim::SimCall> {
        self.http
            .get(format!("{}/sim/calls", self.sim_url))
            .send()
            .await
            .expect("calls")
            .json()
            .await
            .expect("json")
    }

    /// Runs every job due now on the three queues, waits for the simulator's callbacks,
    /// and repeats until nothing is due and no simulated call is in flight. Returns how many
    /// jobs ran.
    ///
    /// # Panics
    /// When Redis fails or the simulator never goes quiet within 10 s.
    pub async fn quiesce(&self) -> usize {
        let mut total = 0;
        loop {
            let mut ran = 0;
            ran += self.dispatch_worker.drain(10_000).await.expect("dispatch");
            ran += self.dialer_worker.drain(10_000).await.expect("dialer");
            ran += self.health_worker.drain(10_000).await.expect("health");
            ran += self.stats_worker.drain(10_000).await.expect("stats");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while {
                let s = self.sim_stats().await;
                s.calls_active + s.messages_active > 0
            } {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "simulator still has calls or messages in flight after 10 s"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            total += ran;
            let now = self.clock.now_ms();
            let waiting = self
                .svc
                .dialer_queue
                .counts(now)
                .await
                .expect("counts")
                .waiting
                + self
                    .svc
                    .dispatch_queue
                    .counts(now)
                    .await
                    .expect("counts")
                    .waiting;
            if ran == 0 && waiting == 0 {
                return total;
            }
        }
    }

    /// When the dialer's queues next have a job due, ms.
    pub async fn next_dialer_due(&self) -> Option<i64> {
        let mut next: Option<i64> = None;
        for worker in [&self.dispatch_worker, &self.dialer_worker] {
            let due = match worker.try_execute_once().await.expect("dialer") {
                Outcome::Empty { next_due_ms } => next_due_ms,
                Outcome::Processed { .. } => Some(self.clock.now_ms()),
            };
            next = match (next, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        next
    }

    /// Moves the clock to `at_ms` (never backwards) and quiesces.
    pub async fn advance_to(&self, at_ms: i64) -> usize {
        if at_ms > self.clock.now_ms() {
            self.clock.set(outdial_clock::ms_to_datetime(at_ms));
        }
        self.quiesce().await
    }

    /// Repeatedly jumps the clock to the next due dialer job (at most `step_max_ms` ahead)
    /// until `done` holds or `max_steps` steps ran.
    ///
    /// # Panics
    /// When `done` never holds.
    pub async fn run_until<F, Fut>(&self, step_max_ms: i64, max_steps: usize, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        self.quiesce().await;
        for _ in 0..max_steps {
            if done().await {
                return;
            }
            let now = self.clock.now_ms();
            let next = self
                .next_dialer_due()
                .await
                .unwrap_or(now + step_max_ms)
                .clamp(now + 1, now + step_max_ms);
            self.advance_to(next).await;
        }
        assert!(
            done().await,
            "condition not reached after {max_steps} steps"
        );
    }
}

impl InProcess {
    /// Stops the simulator and the API and drops the test database.
    pub async fn finish(self) {
        let Self { db, stop, .. } = self;
        drop(stop);
        db.cleanup().await;
    }
}

/// Stops the in-process simulator and API when dropped.
struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}
