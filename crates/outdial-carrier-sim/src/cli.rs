//! Command line of `outdial-carrier-sim`: every flag also reads an `OUTDIAL_SIM_…`
//! environment variable; unset options keep [`SimConfig::default`]'s value.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, SimConfig};

/// `outdial-carrier-sim` options.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "outdial-carrier-sim",
    version,
    about = "A simulated voice/SMS carrier speaking the Twilio REST + status-callback protocol."
)]
pub struct SimArgs {
    /// Address to serve the carrier API on (port 0 picks a free port; the real address is
    /// printed).
    #[arg(long, env = "OUTDIAL_SIM_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Address to serve Prometheus `/metrics` on; none by default.
    #[arg(long, env = "OUTDIAL_SIM_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Account sid clients must authenticate as.
    #[arg(long, env = "OUTDIAL_SIM_ACCOUNT_SID", default_value = DEFAULT_ACCOUNT_SID)]
    pub account_sid: String,
    /// Auth token: basic-auth password and callback signing key.
    #[arg(long, env = "OUTDIAL_SIM_AUTH_TOKEN", default_value = DEFAULT_AUTH_TOKEN, hide_env_values = true)]
    pub auth_token: String,
    /// Call outcome weights, e.g. `human=0.4,machine=0.15,no_answer=0.2`; replaces the
    /// default mix (names left out weigh 0).
    #[arg(long, env = "OUTDIAL_SIM_MIX", value_parser = parse_mix)]
    pub mix: Option<BTreeMap<String, f64>>,
    /// SMS outcome weights, e.g. `delivered=0.92,undelivered=0.05,failed=0.03`.
    #[arg(long, env = "OUTDIAL_SIM_SMS_MIX", value_parser = parse_mix)]
    pub sms_mix: Option<BTreeMap<String, f64>>,
    /// Simulated seconds per real second (60: a one-minute call takes one second).
    #[arg(long, env = "OUTDIAL_SIM_TIME_SCALE")]
    pub time_scale: Option<f64>,
    /// Seed of the outcome/timing RNG (random if unset).
    #[arg(long, env = "OUTDIAL_SIM_SEED")]
    pub seed: Option<u64>,
    /// Shortest simulated ring time, ms.
    #[arg(long, env = "OUTDIAL_SIM_RING_MIN_MS")]
    pub ring_min_ms: Option<u64>,
    /// Longest simulated ring time, ms.
    #[arg(long, env = "OUTDIAL_SIM_RING_MAX_MS")]
    pub ring_max_ms: Option<u64>,
    /// How long an unanswered call rings, simulated seconds.
    #[arg(long, env = "OUTDIAL_SIM_NO_ANSWER_RING_S")]
    pub no_answer_ring_s: Option<u64>,
    /// Simulated delay between SMS statuses, ms.
    #[arg(long, env = "OUTDIAL_SIM_SMS_DELAY_MS")]
    pub sms_delay_ms: Option<u64>,
    /// File of unallocated numbers: one E.164 per line, `#` starts a comment.
    #[arg(long, env = "OUTDIAL_SIM_UNALLOCATED_FILE")]
    pub unallocated_file: Option<PathBuf>,
    /// No simulated waits at all (benchmarks).
    #[arg(long, env = "OUTDIAL_SIM_INSTANT")]
    pub instant: bool,
}

impl SimArgs {
    /// The simulator configuration these options describe (reads `--unallocated-file`).
    ///
    /// Errors: the unallocated file cannot be read, or the result fails
    /// [`SimConfig::validate`].
    pub fn to_config(&self) -> anyhow::Result<SimConfig> {
        let defaults = SimConfig::default();
        let unallocated = match &self.unallocated_file {
            Some(path) => parse_number_list(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            None => BTreeSet::new(),
        };
        let cfg = SimConfig {
            account_sid: self.account_sid.clone(),
            auth_token: self.auth_token.clone(),
            mix: self.mix.clone().unwrap_or(defaults.mix),
            sms_mix: self.sms_mix.clone().unwrap_or(defaults.sms_mix),
            seed: self.seed,
            ring_min_ms: self.ring_min_ms.unwrap_or(defaults.ring_min_ms),
            ring_max_ms: self.ring_max_ms.unwrap_or(defaults.ring_max_ms),
            no_answer_ring_s: self.no_answer_ring_s.unwrap_or(defaults.no_answer_ring_s),
            sms_delay_ms: self.sms_delay_ms.unwrap_or(defaults.sms_delay_ms),
            time_scale: self.time_scale.unwrap_or(defaults.time_scale),
            instant: self.instant,
            unallocated,
            ..defaults
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Parses `name=weight,name=weight`. Errors name the malformed entry; whether the names
/// exist is checked by [`SimConfig::validate`].
pub fn parse_mix(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut mix = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, weight) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?} is not name=weight"))?;
        let weight: f64 = weight
            .trim()
            .parse()
            .map_err(|_| format!("weight of {entry:?} is not a number"))?;
        mix.insert(name.trim().to_owned(), weight);
    }
    if mix.is_empty() {
        return Err("empty mix".to_owned());
    }
    Ok(mix)
}

/// The numbers of an unallocated-numbers file: one per line, blank lines and `#` comments
/// (whole-line or trailing) ignored.
pub fn parse_number_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn parses_mixes() {
        let mix = parse_mix("human=0.4, machine=0.15,no_answer=1").expect("valid mix");
        assert_eq!(mix.len(), 3);
        assert_eq!(mix.get("machine"), Some(&0.15));
        assert!(parse_mix("human").is_err());
        assert!(parse_mix("human=x").is_err());
        assert!(parse_mix("").is_err());
    }

    #[test]
    fn parses_number_lists() {
        let list = parse_number_list(
            "# unallocated\n+12125550100\n\n  +12125550101  # spare\n#+12125550102\n",
        );
        assert_eq!(
            list.into_iter().collect::<Vec<_>>(),
            ["+12125550100", "+12125550101"]
        );
    }

    #[test]
    fn flags_override_defaults() {
        let args = SimArgs::try_parse_from([
            "outdial-carrier-sim",
            "--listen",
            "127.0.0.1:0",
            "--mix",
            "human=1",
            "--time-scale",
            "60",
            "--seed",
            "9",
            "--instant",
        ])
        .expect("valid flags");
        let cfg = args.to_config().expect("valid config");
        assert_eq!(cfg.mix.len(), 1);
        assert_eq!(cfg.time_scale, 60.0);
        assert_eq!(cfg.seed, Some(9));
        assert!(cfg.instant);
        assert_eq!(cfg.ring_max_ms, SimConfig::default().ring_max_ms);
        assert_eq!(cfg.account_sid, DEFAULT_ACCOUNT_SID);

        let bad = SimArgs::try_parse_from(["outdial-carrier-sim", "--mix", "voicemail=1"])
            .expect("parses");
        assert!(bad.to_config().is_err(), "unknown outcome name");
    }
}
