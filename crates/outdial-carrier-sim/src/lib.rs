//! `outdial-carrier-sim`: a carrier that speaks the same REST + status-callback protocol as
//! [`outdial_carrier::TwilioRest`], with configurable outcome mixes and latencies — the default
//! carrier of the demo, the tests and the benchmarks (product §2).
//!
//! ## Endpoints
//!
//! | endpoint | auth | what |
//! |---|---|---|
//! | `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` | basic | originate; `201 {sid: "CA…", status: "queued"}` then signed call status callbacks |
//! | `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` | basic | send a text; `201 {sid: "SM…", status: "queued"}` then signed message status callbacks |
//! | `POST /sim/script` | none | `{"+12125550100": ["no_answer", "human"]}`: scripted outcomes per `To`, in order (a call takes the first call outcome, a message the first SMS outcome); replaces that number's script, `[]` clears it |
//! | `GET /sim/calls` | none | every call and message ([`SimCall`]), oldest first |
//! | `GET /sim/stats` | none | counters ([`SimStats`]) |
//! | `GET /healthz` | none | `200 ok` |
//!
//! Request errors use the carrier's JSON shape `{code, message, more_info, status}`:
//! `401`/20003 for bad credentials, `400`/21211 for a `To` that is not `+1…` E.164,
//! `400`/21212 for such a `From` (our caller ID, so *not* an invalid-number code: the
//! client maps it to [`outdial_carrier::CarrierError::Rejected`]), `400`/21217 for a `To` in the
//! unallocated set, `400`/21205 for a missing or non-http(s) `Url`/`StatusCallback`,
//! `400`/21602 for an empty SMS `Body`.
//!
//! ## Simulation
//!
//! Each call's outcome ([`CallOutcome`]) comes from the `To` number's script if it has one
//! left, else from a weighted draw over [`SimConfig::mix`] with a seeded RNG; its ring and
//! talk times are drawn at the same moment, so a seed fixes the whole run. Simulated
//! durations are divided by [`SimConfig::time_scale`] to get real waits (or zeroed by
//! [`SimConfig::instant`]). Callbacks are `POST`ed form-encoded and signed over the exact
//! `StatusCallback` URL, one at a time per call, each retried up to 3 times (after 200,
//! 400, 800 ms of real time, whatever the scale) on connect errors, timeouts and `5xx`.
//!
//! ## Metrics
//!
//! `outdial_sim_calls_total{outcome}`, `outdial_sim_messages_total{outcome}`,
//! `outdial_sim_calls_active`, `outdial_sim_callbacks_total{result=sent|retried|failed}`
//! through the `metrics` facade; the binary exports them with `--metrics-listen`.

mod api;
pub mod cli;
mod meter;
mod outcome;
mod run;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

pub use outcome::{CallOutcome, SmsOutcome};
pub use state::{SimCall, SimStats};

/// The simulator's default account sid (also the binary's `--account-sid` default).
pub const DEFAULT_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
/// The simulator's default auth token (also the binary's `--auth-token` default).
pub const DEFAULT_AUTH_TOKEN: &str = "sim-auth-token";

/// Simulator configuration. Every field has a default ([`SimConfig::default`]); as JSON or
/// TOML, unknown keys are rejected. Times are milliseconds unless the name ends in `_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// The account sid requests must use, in the path and as the basic-auth user.
    pub account_sid: String,
    /// The auth token: basic-auth password of requests, and the key callbacks are signed with.
    pub auth_token: String,
    /// Weights of the call outcomes (`human`, `human_hangup`, `machine`, `no_answer`,
    /// `busy`, `failed`, `silent`, `spam_reported`); need not sum to 1, missing names weigh 0.
    pub mix: BTreeMap<String, f64>,
    /// Weights of the message outcomes (`delivered`, `undelivered`, `failed`).
    pub sms_mix: BTreeMap<String, f64>,
    /// Seed of the outcome and timing RNG; `None` seeds from the OS. Call sids are always
    /// random, so two runs with one seed never reuse a sid.
    pub seed: Option<u64>,
    /// Shortest simulated ring time before an answer, busy or failure, ms.
    pub ring_min_ms: u64,
    /// Longest simulated ring time, ms (≥ `ring_min_ms`).
    pub ring_max_ms: u64,
    /// How long an unanswered call rings before `no-answer`, simulated seconds.
    pub no_answer_ring_s: u64,
    /// Simulated delay between a message's successive statuses, ms.
    pub sms_delay_ms: u64,
    /// Simulated time runs this many times faster than real time: every simulated wait is
    /// divided by it (60 → a 60 s call takes 1 s). Must be finite and > 0.
    pub time_scale: f64,
    /// Zero every simulated wait (benchmarks). Callback retry backoff still applies.
    pub instant: bool,
    /// `To` numbers (E.164) that do not exist: originate/send answers `400`/21217.
    pub unallocated: BTreeSet<String>,
    /// Real-time limit on each callback `POST`, ms.
    pub callback_timeout_ms: u64,
    /// How many calls and messages `/sim/calls` remembers (oldest dropped first); counters
    /// in `/sim/stats` are unaffected.
    pub history_limit: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        let weights =
            |pairs: &[(&str, f64)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        Self {
            account_sid: DEFAULT_ACCOUNT_SID.to_owned(),
            auth_token: DEFAULT_AUTH_TOKEN.to_owned(),
            mix: weights(&[
                ("human", 0.40),
                ("human_hangup", 0.10),
                ("machine", 0.15),
                ("no_answer", 0.20),
                ("busy", 0.05),
                ("failed", 0.05),
                ("silent", 0.05),
            ]),
            sms_mix: weights(&[("delivered", 0.92), ("undelivered", 0.05), ("failed", 0.03)]),
            seed: None,
            ring_min_ms: 3_000,
            ring_max_ms: 10_000,
            no_answer_ring_s: 25,
            sms_delay_ms: 1_000,
            time_scale: 1.0,
            instant: false,
            unallocated: BTreeSet::new(),
            callback_timeout_ms: 5_000,
            history_limit: 100_000,
        }
    }
}

impl SimConfig {
    /// Checks the configuration `serve` would refuse: an empty account sid, an unknown
    /// outcome name or a negative/non-finite weight in `mix` or `sms_mix` (or all zero),
    /// `ring_min_ms > ring_max_ms`, a `time_scale` that is not finite and > 0.
    pub fn validate(&self) -> anyhow::Result<()> {
        state::Sim::check(self)
            .map(drop)
            .map_err(anyhow::Error::msg)
    }
}

/// Serves the simulator on `listener` until `shutdown` completes, then lets in-flight HTTP
/// requests finish and stops the call simulations still running (their remaining callbacks
/// are never sent).
///
/// Errors: an invalid `cfg` (unknown outcome name, negative weight, `ring_min_ms >
/// ring_max_ms`, `time_scale` ≤ 0, empty account sid) before serving; an I/O error of the
/// listener while serving.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sim = Arc::new(
        state::Sim::new(cfg)
            .map_err(|e| anyhow::anyhow!("invalid simulator configuration: {e}"))?,
    );
    meter::describe();
    let addr = listener
        .local_addr()
        .context("reading the listener's address")?;
    tracing::info!(%addr, "carrier simulator serving");
    axum::serve(listener, api::router(Arc::clone(&sim)))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the carrier simulator")?;
    sim.stop_simulations().await;
    tracing::info!("carrier simulator stopped");
    Ok(())
}
