//! The fleet's configuration (product §12: every default overridable, documented in one place:
//! `docs/configuration.md`).
//!
//! One [`Config`] for every binary, one section per concern; each binary reads the sections
//! it needs. Values come from `OUTDIAL_<SECTION>__<KEY>` variables (double underscore between
//! section and key), e.g. `OUTDIAL_REDIS__URL`, `OUTDIAL_DIALER__POLL_INTERVAL_MS`,
//! `OUTDIAL_CHANNELS__POOLS__CAMPAIGN=120`. Unknown keys are rejected so a typo fails loudly.
//! [`load`] takes the variables as a map, so tests never touch the process environment.
//! Decimal values (`0.65`) are read as numbers, so a text setting cannot be a decimal.
//! `OUTDIAL_SIM_*` variables belong to the carrier simulator and are ignored here.

use std::collections::BTreeMap;

use figment::Figment;
use figment::providers::Serialized;
use outdial_channels::ChannelConfig;
use serde::{Deserialize, Serialize};

/// The prefix of every variable read by [`load`].
pub const ENV_PREFIX: &str = "OUTDIAL_";

/// A secret string: never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// The secret in clear text (`Debug` prints `Secret(***)`); never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Everything configurable. See `docs/configuration.md` for every key and its default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Redis connection and key prefix.
    pub redis: RedisConfig,
    /// Postgres URL and pool size (`postgres.*`).
    pub postgres: PostgresConfig,
    /// Listen address of `/metrics` and `/healthz` (`metrics.listen`).
    pub metrics: MetricsConfig,
    /// Offset of the injected clock (`clock.offset_ms`, product §3 "Time").
    pub clock: ClockConfig,
    /// The `tracing` filter (`log.filter`).
    pub log: LogConfig,
    /// Job queues and worker concurrency.
    pub queues: QueuesConfig,
    /// SIP channel pools (product §4).
    pub channels: ChannelConfig,
    /// Dialing (product §4, §5, §6).
    pub dialer: DialerSettings,
    /// The carrier (provider REST API).
    pub carrier: CarrierConfig,
    /// Caller-ID health (product §7).
    pub health: HealthSettings,
    /// Campaign stats (product §9).
    pub stats: StatsSettings,
    /// API listen address, public URL and SSE keep-alive (`api.*`, product §10).
    pub api: ApiSettings,
}

/// Redis URL, key prefix and pool size (`redis.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// URL, e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prefix of every key and pub/sub channel (empty in production; tests use a random one).
    pub prefix: String,
    /// Pooled connections per process.
    pub pool_size: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            prefix: String::new(),
            pool_size: 32,
        }
    }
}

/// Postgres URL and pool size (`postgres.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// URL, e.g. `postgres://postgres@127.0.0.1:5432/outdial`.
    pub url: String,
    /// Pooled connections per process.
    pub max_connections: u32,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/outdial".into(),
            max_connections: 10,
        }
    }
}

/// Where `/metrics` and `/healthz` are served (`metrics.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the `/metrics` and `/healthz` server; port 0 picks a free port (printed at
    /// start-up). In Kubernetes use e.g. `0.0.0.0:9100`.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
        }
    }
}

/// The clock (product §3 "Time").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    /// Offset added to the wall clock, ms. 0 in production; the demo pins the fleet to a US
    /// weekday afternoon so calling windows are open whenever it runs.
    pub offset_ms: i64,
}

/// Log verbosity (`log.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `outdial_dialer=debug,info`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
        }
    }
}

/// Queues (product §3) and worker concurrency (product §12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueuesConfig {
    /// Lease of a reserved job, ms; renewed every quarter of it while the job runs, so the
    /// jobs of a killed pod return to the queue within this long.
    pub lease_ms: i64,
    /// Stalls after which a job is dead-lettered: lease expiries while its holder was
    /// alive. Expiries because the holder is gone (a killed pod) do not count.
    pub max_stalls: u32,
    /// Runs of a failing job before it is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay, ms; doubles each attempt.
    pub backoff_base_ms: i64,
    /// Longest retry delay, ms.
    pub backoff_max_ms: i64,
    /// First wait after an outage (Postgres or Redis unreachable), ms; doubles with each
    /// outage in a row, with jitter. Outages never use attempts.
    pub outage_backoff_base_ms: i64,
    /// Longest wait between runs during an outage, ms: the most a job is late once the
    /// dependency is back.
    pub outage_backoff_max_ms: i64,
    /// Largest batch reserved or settled in one round trip.
    pub batch_max: usize,
    /// `campaign-dialer` jobs run at once per process (product §12: 5).
    pub dialer_concurrency: usize,
    /// `campaign-health` jobs run at once per process (product §12: 10).
    pub health_concurrency: usize,
    /// `campaign-stats` jobs run at once per process (product §12: 5).
    pub stats_concurrency: usize,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        Self {
            lease_ms: 4_000,
            max_stalls: 3,
            max_attempts: 5,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            outage_backoff_base_ms: 200,
            outage_backoff_max_ms: 2_000,
            batch_max: 64,
            dialer_concurrency: 5,
            health_concurrency: 10,
            stats_concurrency: 5,
        }
    }
}

/// Dialing (product §4, §5, §6, §12). Every delay is configurable so the demo can shorten it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialerSettings {
    /// Dispatch cycle interval, ms (product §12: 1 s).
    pub poll_interval_ms: i64,
    /// Simultaneous calls across all organizations (product §12: 50).
    pub global_concurrency_limit: u32,
    /// A contact `locked` longer than this returns to `queued`, ms (product §12: 120 s).
    pub stale_lock_ms: i64,
    /// An attempt with no completion signal ends as `timeout` after this, ms (product §12: 30 min).
    pub completion_timeout_ms: i64,
    /// Re-queue delay when the channel pool is full, ms (product §12: 5 s).
    pub backpressure_requeue_ms: i64,
    /// Contacts admitted ahead of a campaign's ticks, in ms of its pace: a campaign at `cps`
    /// keeps up to `cps × lookahead_ms / 1000` contacts locked (at least 1).
    pub lookahead_ms: i64,
    /// Postgres connections a dialer keeps for its dispatch cycle, apart from the pool its
    /// job handlers share (`postgres.max_connections`), so the cycle never queues behind
    /// them for a connection. At least 2 are used (the cycle reads campaigns on a second
    /// connection while it holds its transaction). Opened on first use.
    pub dispatch_connections: u32,
    /// Largest lag a tick schedule catches up on before restarting its grid, ms.
    pub max_tick_lag_ms: i64,
    /// How long a dialer gathers per-call writes — call completions, call SIDs — before
    /// writing them together, ms: the first waits at most this long, and every one arriving
    /// meanwhile (or while the previous batch is being written) joins it, so they share
    /// their statements and commit (`outdial_fleet::batch`). 0 writes each on its own.
    pub write_gather_ms: u64,
    /// Upper bound of the random delay added to a window opening so openings are not bursts, ms.
    pub window_jitter_ms: i64,
    /// A human-answered call shorter than this is `human_hangup`, s.
    pub hangup_threshold_s: u32,
    /// Lowest health score a DID may call with (product §12: 0.7).
    pub did_score_threshold: f64,
    /// Maintenance interval (channel lease renewal, reconciliation), ms.
    pub maintenance_interval_ms: i64,
    /// DID lifecycle job interval, ms (product §12: 60 s).
    pub did_lifecycle_interval_ms: i64,
    /// How often each dialer process makes sure the fleet-wide singleton jobs exist and
    /// checks whether Redis lost its data (then reconciles at once), ms (product §3).
    pub keeper_interval_ms: u64,
    /// Minimum gap between two texts from one DID, ms (product §6: 15 min); the SMS drip
    /// interval is this divided by the campaign's usable DIDs.
    pub sms_gap_ms: i64,
    /// A text with no final delivery status this long after it was recorded ends `failed`
    /// with disposition `timeout`, ms (1 h), so a lost receipt cannot hold a campaign open.
    pub sms_delivery_timeout_ms: i64,
    /// URL the carrier fetches for call instructions (TwiML).
    pub call_url: String,
    /// Call progress events requested from the carrier (`StatusCallbackEvent`),
    /// comma-separated, e.g. `answered,completed`. Default `completed`, as the carrier's own
    /// default: outcomes need only the final status, which always comes, and the API
    /// acknowledges progress callbacks without acting on them — each extra event is one
    /// more signed callback per call for nothing.
    pub call_status_events: String,
}

impl Default for DialerSettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1_000,
            global_concurrency_limit: 50,
            stale_lock_ms: 120_000,
            completion_timeout_ms: 30 * 60_000,
            backpressure_requeue_ms: 5_000,
            lookahead_ms: 1_500,
            dispatch_connections: 3,
            max_tick_lag_ms: 1_000,
            write_gather_ms: 5,
            window_jitter_ms: 60_000,
            hangup_threshold_s: 10,
            did_score_threshold: 0.7,
            maintenance_interval_ms: 15_000,
            did_lifecycle_interval_ms: 60_000,
            keeper_interval_ms: 1_000,
            sms_gap_ms: 15 * 60_000,
            sms_delivery_timeout_ms: 3_600_000,
            call_url: "http://127.0.0.1:8080/carrier/voice/twiml".into(),
            call_status_events: "completed".into(),
        }
    }
}

/// The carrier's REST API (Twilio-compatible).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CarrierConfig {
    /// Base URL, e.g. `https://api.twilio.com` or the simulator's `http://127.0.0.1:7070`.
    pub base_url: String,
    /// Account SID (`AC…`): the account in REST paths and the basic-auth user.
    pub account_sid: String,
    /// Auth token: authenticates our requests and signs the carrier's callbacks.
    pub auth_token: Secret,
    /// Request timeout, ms.
    pub timeout_ms: u64,
}

impl Default for CarrierConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:7070".into(),
            account_sid: "AC00000000000000000000000000000000".into(),
            auth_token: Secret("sim-auth-token".into()),
            timeout_ms: 10_000,
        }
    }
}

/// Caller-ID health (product §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// Score at or above which a DID is ok (0.8).
    pub ok: f64,
    /// Score at or above which a DID stays usable, with a warning below `ok` (0.7).
    pub usable: f64,
    /// Score below which a DID is burned (0.5).
    pub burn: f64,
    /// Scored calls needed before any action, and before a score counts for selection (10).
    pub min_calls: u32,
    /// Cooldown length, ms (2 h).
    pub cooldown_ms: i64,
    /// Warming length, ms (1 h).
    pub warming_ms: i64,
    /// Calls a warming DID may take over its warming period (20).
    pub warming_max_calls: u32,
    /// A DID is re-scored this long after the first outcome that asks for it, ms; outcomes
    /// arriving meanwhile are scored together (one re-score per DID per period).
    pub rescore_delay_ms: i64,
    /// How long the health worker gathers re-scores to read and store them together, ms
    /// (`outdial_fleet::batch`); 0 re-scores each DID on its own.
    pub write_gather_ms: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        let t = outdial_domain::health::HealthThresholds::default();
        let l = outdial_domain::did::LifecycleConfig::default();
        Self {
            ok: t.ok,
            usable: t.usable,
            burn: t.burn,
            min_calls: t.min_calls,
            cooldown_ms: l.cooldown_ms,
            warming_ms: l.warming_ms,
            warming_max_calls: l.warming_max_calls,
            rescore_delay_ms: 1_000,
            write_gather_ms: 5,
        }
    }
}

impl HealthSettings {
    /// The health bands and minimum sample, as the health action takes them (product §7).
    pub fn thresholds(&self) -> outdial_domain::health::HealthThresholds {
        outdial_domain::health::HealthThresholds {
            ok: self.ok,
            usable: self.usable,
            burn: self.burn,
            min_calls: self.min_calls,
        }
    }

    /// Cooldown, warming length and ramp cap, as the DID lifecycle takes them.
    pub fn lifecycle(&self) -> outdial_domain::did::LifecycleConfig {
        outdial_domain::did::LifecycleConfig {
            cooldown_ms: self.cooldown_ms,
            warming_ms: self.warming_ms,
            warming_max_calls: self.warming_max_calls,
        }
    }
}

/// Stats (product §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsSettings {
    /// At most one aggregation (and `campaign.stats.updated`) per campaign per this, ms.
    pub throttle_ms: i64,
}

impl Default for StatsSettings {
    fn default() -> Self {
        Self { throttle_ms: 1_000 }
    }
}

/// HTTP API settings (`api.*`, product §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Listen address; port 0 picks a free port (printed at start-up).
    pub listen: String,
    /// The API's URL as the carrier reaches it: status callbacks go to
    /// `<public_url>/carrier/voice/status` and are verified against it.
    pub public_url: String,
    /// SSE keep-alive interval, ms.
    pub sse_keepalive_ms: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            sse_keepalive_ms: 15_000,
        }
    }
}

impl Config {
    /// The usable-caller-ID rule's settings (product §5.5, §7): `dialer.did_score_threshold`,
    /// `health.min_calls` and the lifecycle timings of the warming ramp — the one set every
    /// path that picks, counts or reports usable caller IDs applies.
    pub fn caller_id_rule(&self) -> outdial_domain::did::CallerIdRule {
        outdial_domain::did::CallerIdRule {
            threshold: self.dialer.did_score_threshold,
            min_calls: self.health.min_calls,
            lifecycle: self.health.lifecycle(),
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// Builds the configuration from `env` (the process environment as a map): defaults, then
/// every `OUTDIAL_<SECTION>__<KEY>` variable.
///
/// Errors: an unknown section or key, or a value of the wrong type, named in the message.
pub fn load(env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if rest.starts_with("SIM_") || rest.is_empty() || is_service_link(rest) {
            continue;
        }
        if !rest.contains("__") {
            return Err(ConfigError(format!(
                "{name} is not a setting: settings are {ENV_PREFIX}<SECTION>__<KEY>, e.g. OUTDIAL_DIALER__POLL_INTERVAL_MS"
            )));
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        // Integers and words stay text: `extract_lossy` reads "250" as a number where a number
        // is expected and as text where text is (an auth token of digits stays a string).
        // Decimals become f64 here, because figment's own text→number parsing reads short
        // decimals as f32 ("0.65" would become 0.6499999761…).
        let is_decimal =
            value.contains(['.', 'e', 'E']) && value.parse::<f64>().is_ok_and(f64::is_finite);
        figment = match value.parse::<f64>() {
            Ok(x) if is_decimal => figment.merge(Serialized::default(&key, x)),
            _ => figment.merge(Serialized::default(&key, value.clone())),
        };
    }
    figment
        .extract_lossy()
        .map_err(|e| ConfigError(e.to_string()))
}

/// Whether `rest` (after `OUTDIAL_`) is a variable Kubernetes injects for a Service whose
/// name starts with `outdial-` (`OUTDIAL_API_SERVICE_HOST`, `OUTDIAL_API_PORT_8080_TCP_ADDR`,
/// …), not a setting.
fn is_service_link(rest: &str) -> bool {
    let parts: Vec<&str> = rest.split('_').collect();
    parts
        .windows(2)
        .any(|w| w == ["SERVICE", "HOST"] || w == ["SERVICE", "PORT"])
        || parts.last() == Some(&"PORT")
        || parts
            .windows(2)
            .any(|w| w[0] == "PORT" && w[1].chars().all(|c| c.is_ascii_digit()) && !w[1].is_empty())
}

/// [`load`] from the process environment.
///
/// Errors: as [`load`].
pub fn from_env() -> Result<Config, ConfigError> {
    load(&std::env::vars().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_match_spec_section_12() {
        let c = load(&env(&[])).expect("defaults");
        assert_eq!(c.dialer.poll_interval_ms, 1_000);
        assert_eq!(c.dialer.stale_lock_ms, 120_000);
        assert_eq!(c.dialer.global_concurrency_limit, 50);
        assert_eq!(c.dialer.completion_timeout_ms, 1_800_000);
        assert_eq!(c.dialer.backpressure_requeue_ms, 5_000);
        assert_eq!(c.channels.pools["campaign"], 60);
        assert_eq!(c.channels.pools["ivr"], 15);
        assert_eq!(c.channels.pools["api"], 8);
        assert_eq!(c.channels.ttl_s, 3_600);
        assert_eq!(
            (
                c.queues.dialer_concurrency,
                c.queues.health_concurrency,
                c.queues.stats_concurrency
            ),
            (5, 10, 5)
        );
        assert_eq!(c.health.cooldown_ms, 7_200_000);
        assert_eq!(c.dialer.sms_gap_ms, 900_000);
    }

    #[test]
    fn environment_overrides_nested_keys_with_types() {
        let c = load(&env(&[
            ("OUTDIAL_REDIS__URL", "redis://10.0.0.1:6379"),
            ("OUTDIAL_DIALER__POLL_INTERVAL_MS", "250"),
            ("OUTDIAL_DIALER__DID_SCORE_THRESHOLD", "0.65"),
            ("OUTDIAL_CHANNELS__POOLS__CAMPAIGN", "120"),
            ("OUTDIAL_CARRIER__AUTH_TOKEN", "12345"),
            ("OUTDIAL_SIM_LISTEN", "ignored"),
            ("OUTDIAL_API_SERVICE_HOST", "10.0.0.7"),
            ("OUTDIAL_API_PORT", "tcp://10.0.0.7:8080"),
            ("OUTDIAL_API_PORT_8080_TCP_ADDR", "10.0.0.7"),
            ("PATH", "/usr/bin"),
        ]))
        .expect("config");
        assert_eq!(c.redis.url, "redis://10.0.0.1:6379");
        assert_eq!(c.dialer.poll_interval_ms, 250);
        assert!((c.dialer.did_score_threshold - 0.65).abs() < 1e-12);
        assert_eq!(c.channels.pools["campaign"], 120);
        assert_eq!(
            c.channels.pools["api"], 8,
            "other pools keep their defaults"
        );
        assert_eq!(c.carrier.auth_token.expose(), "12345");
        assert!(
            !format!("{c:?}").contains("12345"),
            "secrets are not printed"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = load(&env(&[("OUTDIAL_DIALER__POLL_INTERVAL", "5")])).expect_err("typo");
        assert!(err.to_string().contains("poll_interval"), "{err}");
        let err =
            load(&env(&[("OUTDIAL_DIALER__POLL_INTERVAL_MS", "soon")])).expect_err("bad type");
        assert!(err.to_string().contains("poll_interval_ms"), "{err}");
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// `OUTDIAL_…` names and default values of every setting, from `Config::default()`.
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let name = if prefix.is_empty() {
                        k.to_ascii_uppercase()
                    } else {
                        format!("{prefix}__{}", k.to_ascii_uppercase())
                    };
                    flatten(&name, v, out);
                }
            }
            other => out.push((format!("{ENV_PREFIX}{prefix}"), other.to_string())),
        }
    }

    #[test]
    fn every_setting_is_documented() {
        let mut settings = Vec::new();
        flatten(
            "",
            &serde_json::to_value(Config::default()).expect("serializes"),
            &mut settings,
        );
        let doc = include_str!("../../../docs/configuration.md");
        let missing: Vec<&(String, String)> = settings
            .iter()
            .filter(|(name, _)| !doc.contains(&format!("`{name}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "undocumented settings (name, default): {missing:#?}"
        );
    }
}
