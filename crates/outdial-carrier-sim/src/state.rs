//! The simulator's shared state: configuration, RNG, scripts, call history and counters,
//! behind one mutex that is never held across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::outcome::{CallOutcome, CallPlan, Mix, SmsOutcome};
use crate::{SimConfig, meter};

/// One call or message as `GET /sim/calls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCall {
    /// `CA…` or `SM…`.
    pub sid: String,
    /// `"call"` or `"sms"`.
    pub kind: String,
    /// Destination, E.164.
    pub to: String,
    /// Caller ID / sending number, E.164.
    pub from: String,
    /// The outcome name ([`super::CallOutcome::as_str`] or [`super::SmsOutcome::as_str`]).
    pub outcome: String,
    /// When the request was accepted, ms since the Unix epoch.
    pub created_ms: u64,
    /// When the final status was reached (its callback sent or given up on), ms since the
    /// Unix epoch; `None` while in progress and forever for `silent` calls.
    pub ended_ms: Option<u64>,
    /// Callbacks delivered (answered `2xx`) so far.
    pub callbacks_sent: u32,
}

/// Counters of `GET /sim/stats`, since the simulator started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Calls accepted.
    pub calls_total: u64,
    /// Calls whose simulation is still running (a `silent` call stops after `ringing`).
    pub calls_active: u64,
    /// Highest `calls_active` seen.
    pub calls_peak: u64,
    /// Messages accepted.
    pub messages_total: u64,
    /// Messages whose status timeline is still playing (callbacks still to come).
    #[serde(default)]
    pub messages_active: u64,
    /// Calls accepted per outcome name.
    pub by_outcome: BTreeMap<String, u64>,
    /// Messages accepted per outcome name.
    pub sms_by_outcome: BTreeMap<String, u64>,
    /// Callbacks delivered (`2xx`).
    pub callbacks_sent: u64,
    /// Callbacks given up on (retries exhausted, or a non-retryable answer such as `4xx`).
    pub callbacks_failed: u64,
}

/// What the simulator shares between its handlers and simulation tasks.
pub(crate) struct Sim {
    pub(crate) cfg: SimConfig,
    mix: Mix<CallOutcome>,
    sms_mix: Mix<SmsOutcome>,
    /// Client for status callbacks (no redirects, `callback_timeout_ms`).
    pub(crate) http: reqwest::Client,
    inner: Mutex<Inner>,
    tasks: Mutex<JoinSet<()>>,
}

struct Inner {
    rng: StdRng,
    /// Scripted outcome names per `To`, consumed front to back.
    scripts: HashMap<String, VecDeque<String>>,
    calls: HashMap<String, SimCall>,
    /// Sids in creation order, for listing and for trimming to `history_limit`.
    order: VecDeque<String>,
    stats: SimStats,
}

/// ms since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `prefix` + 32 random hex digits, the carrier's sid shape.
fn new_sid(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::rng().random::<[u8; 16]>()))
}

impl Sim {
    /// Validates `cfg` and builds its mixes.
    pub(crate) fn check(cfg: &SimConfig) -> Result<(Mix<CallOutcome>, Mix<SmsOutcome>), String> {
        if cfg.account_sid.is_empty() {
            return Err("account_sid must not be empty".to_owned());
        }
        if cfg.ring_min_ms > cfg.ring_max_ms {
            return Err(format!(
                "ring_min_ms ({}) must be ≤ ring_max_ms ({})",
                cfg.ring_min_ms, cfg.ring_max_ms
            ));
        }
        if !cfg.time_scale.is_finite() || cfg.time_scale <= 0.0 {
            return Err(format!(
                "time_scale must be finite and > 0, got {}",
                cfg.time_scale
            ));
        }
        let mix = Mix::new("mix", &cfg.mix, CallOutcome::from_name)?;
        let sms_mix = Mix::new("sms_mix", &cfg.sms_mix, SmsOutcome::from_name)?;
        Ok((mix, sms_mix))
    }

    pub(crate) fn new(cfg: SimConfig) -> Result<Self, String> {
        let (mix, sms_mix) = Self::check(&cfg)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.callback_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("TwilioProxy/1.1 (outdial-carrier-sim)")
            .build()
            .map_err(|e| format!("callback http client: {e}"))?;
        let rng = cfg
            .seed
            .map_or_else(StdRng::from_os_rng, StdRng::seed_from_u64);
        Ok(Self {
            mix,
            sms_mix,
            http,
            inner: Mutex::new(Inner {
                rng,
                scripts: HashMap::new(),
                calls: HashMap::new(),
                order: VecDeque::new(),
                stats: SimStats::default(),
            }),
            tasks: Mutex::new(JoinSet::new()),
            cfg,
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave these counters in a state worth refusing to serve.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Real time to wait for `simulated_ms` of simulated time.
    pub(crate) fn real_wait(&self, simulated_ms: u64) -> Duration {
        if self.cfg.instant {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(simulated_ms as f64 / 1000.0 / self.cfg.time_scale)
        }
    }

    /// Replaces the scripts of the given numbers. Errors name an unknown outcome.
    pub(crate) fn set_scripts(
        &self,
        scripts: BTreeMap<String, Vec<String>>,
    ) -> Result<usize, String> {
        for (to, names) in &scripts {
            if let Some(bad) = names
                .iter()
                .find(|n| CallOutcome::from_name(n).is_none() && SmsOutcome::from_name(n).is_none())
            {
                return Err(format!("unknown outcome {bad:?} for {to}"));
            }
        }
        let numbers = scripts.len();
        let mut inner = self.inner();
        for (to, names) in scripts {
            if names.is_empty() {
                inner.scripts.remove(&to);
            } else {
                inner.scripts.insert(to, names.into());
            }
        }
        Ok(numbers)
    }

    /// Removes and returns the first scripted entry for `to` that `parse` accepts.
    fn take_scripted<T>(
        inner: &mut Inner,
        to: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let queue = inner.scripts.get_mut(to)?;
        let (index, outcome) = queue
            .iter()
            .enumerate()
            .find_map(|(i, name)| parse(name).map(|o| (i, o)))?;
        queue.remove(index);
        if queue.is_empty() {
            inner.scripts.remove(to);
        }
        Some(outcome)
    }

    fn remember(&self, inner: &mut Inner, call: SimCall) {
        inner.order.push_back(call.sid.clone());
        inner.calls.insert(call.sid.clone(), call);
        while inner.order.len() > self.cfg.history_limit {
            if let Some(old) = inner.order.pop_front() {
                inner.calls.remove(&old);
            }
        }
    }

    /// Registers a new call to `to`: picks its outcome and timings, counts it active.
    pub(crate) fn new_call(&self, to: &str, from: &str) -> (String, CallPlan) {
        let sid = new_sid("CA");
        let mut inner = self.inner();
        let outcome = Self::take_scripted(&mut inner, to, CallOutcome::from_name)
            .unwrap_or_else(|| self.mix.draw(&mut inner.rng));
        let plan = CallPlan::draw(
            outcome,
            self.cfg.ring_min_ms..=self.cfg.ring_max_ms,
            &mut inner.rng,
        );
        let stats = &mut inner.stats;
        stats.calls_total += 1;
        stats.calls_active += 1;
        stats.calls_peak = stats.calls_peak.max(stats.calls_active);
        *stats
            .by_outcome
            .entry(outcome.as_str().to_owned())
            .or_default() += 1;
        meter::call_created(outcome.as_str());
        let call = SimCall {
            sid: sid.clone(),
            kind: "call".to_owned(),
            to: to.to_owned(),
            from: from.to_owned(),
            outcome: outcome.as_str().to_owned(),
            created_ms: now_ms(),
            ended_ms: None,
            callbacks_sent: 0,
        };
        self.remember(&mut inner, call);
        (sid, plan)
    }

    /// Registers a new message to `to` and picks its outcome.
    pub(crate) fn new_message(&self, to: &str, from: &str) -> (String, SmsOutcome) {
        let sid = new_sid("SM");
        let mut inner = self.inner();
        let outcome = Self::take_scripted(&mut inner, to, SmsOutcome::from_name)
            .unwrap_or_else(|| self.sms_mix.draw(&mut inner.rng));
        inner.stats.messages_total += 1;
        inner.stats.messages_active += 1;
        *inner
            .stats
            .sms_by_outcome
            .entry(outcome.as_str().to_owned())
            .or_default() += 1;
        meter::message_created(outcome.as_str());
        let message = SimCall {
            sid: sid.clone(),
            kind: "sms".to_owned(),
            to: to.to_owned(),
            from: from.to_owned(),
            outcome: outcome.as_str().to_owned(),
            created_ms: now_ms(),
            ended_ms: None,
            callbacks_sent: 0,
        };
        self.remember(&mut inner, message);
        (sid, outcome)
    }

    /// Counts one callback of `sid` as delivered or given up on.
    pub(crate) fn callback_done(&self, sid: &str, delivered: bool) {
        let mut inner = self.inner();
        meter::callback(if delivered { "sent" } else { "failed" });
        if delivered {
            inner.stats.callbacks_sent += 1;
            if let Some(call) = inner.calls.get_mut(sid) {
                call.callbacks_sent += 1;
            }
        } else {
            inner.stats.callbacks_failed += 1;
        }
    }

    /// Marks `sid` as having reached its final status.
    pub(crate) fn ended(&self, sid: &str) {
        if let Some(call) = self.inner().calls.get_mut(sid) {
            call.ended_ms = Some(now_ms());
        }
    }

    /// One message's timeline finished.
    pub(crate) fn message_inactive(&self) {
        let mut inner = self.inner();
        inner.stats.messages_active = inner.stats.messages_active.saturating_sub(1);
    }

    /// One call simulation finished (or was stopped).
    pub(crate) fn call_inactive(&self) {
        let mut inner = self.inner();
        inner.stats.calls_active = inner.stats.calls_active.saturating_sub(1);
        meter::call_inactive();
    }

    pub(crate) fn calls(&self) -> Vec<SimCall> {
        let inner = self.inner();
        inner
            .order
            .iter()
            .filter_map(|sid| inner.calls.get(sid).cloned())
            .collect()
    }

    pub(crate) fn stats(&self) -> SimStats {
        self.inner().stats.clone()
    }

    /// Runs `task` until it ends or the simulator stops.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Aborts every simulation still running and waits for them to unwind.
    pub(crate) async fn stop_simulations(&self) {
        let mut tasks =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        while tasks.try_join_next().is_some() {}
        if !tasks.is_empty() {
            tracing::info!(running = tasks.len(), "stopping call simulations");
        }
        tasks.shutdown().await;
    }
}
