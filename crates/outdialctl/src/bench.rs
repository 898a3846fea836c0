//! `outdialctl bench …` — benchmarks of the real fleet on the local services (run them from
//! a release build: `just bench-pacing`, `just bench-dispatch`). Each prints a table and
//! ends with one summary line; `docs/BENCHMARKS.md` records the results.
//!
//! - **pacing**: one campaign at each rate in turn (1, 5, 20, 100 cps by default), 60 s
//!   each. Call starts are measured where they arrive — the simulator's receive times — so
//!   the whole path (tick → attempt → originate job → HTTP) is inside the measurement.
//!   After a 2 s warm-up, `seconds` of starts are measured: achieved rate = (n − 1) ÷ (time
//!   between the first and the last start); jitter = |interval between consecutive starts −
//!   1000/cps| ms.
//! - **dispatch**: 1,000,000 contacts, 1,000 organizations, 2,000 campaigns seeded in
//!   Postgres; the fleet dials with an instantly answering simulator. Prints the dispatch
//!   cycle's p50/p99 (from the dialers' `dispatch cycle` log lines) and the sustained
//!   attempt-start rate after a 10 s warm-up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use outdial_control::spec::CampaignSpec;
use outdial_control::transition;
use outdial_domain::campaign::CampaignCommand;
use outdial_domain::pacing::{phase_us, tick_interval_us, us_to_due_ms};
use outdial_domain::phone::E164;
use outdial_fleet::config::Config;
use outdial_fleet::jobs::DialerJob;
use outdial_fleet::services::Services;

use outdial_store::bench::DispatchSeed;

use crate::cli::BenchCommand;
use crate::fleet::{Fleet, FleetOptions, sibling_bin_dir};
use crate::setup::{base_fleet_env, build_fleet_if_under_cargo, fresh_environment};

/// Runs a benchmark.
///
/// Errors: services unreachable, the fleet failing, or the measurement incomplete.
pub async fn run(config: Config, cmd: BenchCommand) -> anyhow::Result<()> {
    let bin_dir = sibling_bin_dir()?;
    build_fleet_if_under_cargo(&bin_dir)?;
    if !bin_dir.ends_with("release") {
        eprintln!(
            "note: {} is not a release build; figures will be far below the release ones",
            bin_dir.display()
        );
    }
    match cmd {
        BenchCommand::Pacing {
            rates,
            seconds,
            dialers,
            database,
        } => pacing(config, &rates, seconds, dialers, &database).await,
        BenchCommand::Dispatch {
            contacts,
            orgs,
            campaigns,
            cps,
            seconds,
            dialers,
            concurrency,
            pg_connections,
            database,
        } => {
            dispatch(
                config,
                DispatchSeed {
                    contacts,
                    orgs,
                    campaigns,
                    cps,
                },
                seconds,
                dialers,
                concurrency,
                pg_connections,
                &database,
            )
            .await
        }
    }
}

/// Starts ignored at the beginning of each pacing run, ms.
const WARM_UP_MS: u64 = 2_000;

fn sim_env(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    [
        ("OUTDIAL_SIM_INSTANT", "true"),
        ("OUTDIAL_SIM_MIX", "human=1.0"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn sim_call_times(http: &reqwest::Client, sim_url: &str) -> anyhow::Result<Vec<u64>> {
    let calls: Vec<serde_json::Value> = http
        .get(format!("{sim_url}/sim/calls"))
        .send()
        .await?
        .json()
        .await?;
    let mut t: Vec<u64> = calls
        .iter()
        .filter_map(|c| c["created_ms"].as_u64())
        .collect();
    t.sort_unstable();
    Ok(t)
}

async fn pacing(
    config: Config,
    rates: &[f64],
    seconds: u64,
    dialers: usize,
    database: &str,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    println!(
        "pacing: {seconds} s per rate, {dialers} dialer processes, starts measured at the simulator"
    );
    println!(
        "{:>8} {:>10} {:>10} {:>8} {:>12} {:>12}",
        "cps", "starts", "achieved", "ratio", "jitter p50", "jitter p99"
    );
    for &cps in rates {
        let (svc, config) = fresh_environment(config.clone(), database).await?;
        let org = svc
            .store
            .create_org("bench", Some(10_000), svc.clock.now())
            .await?;
        for i in 0..20 {
            svc.store
                .create_did(
                    org.id,
                    &E164::parse(&format!("+1212555{:04}", 190 + i))?,
                    svc.clock.now(),
                )
                .await?;
        }
        let spec = CampaignSpec {
            name: format!("pacing {cps}"),
            calls_per_second: Some(cps),
            ..CampaignSpec::default()
        };
        let campaign = crate::setup::new_campaign(&svc, org.id, spec).await?;
        let wanted = (cps * (seconds * 1_000 + WARM_UP_MS) as f64 / 1_000.0).ceil() as u64;
        let mut csv = String::from("phone\n");
        for i in 0..(wanted + (cps * 10.0).ceil() as u64 + 5) {
            csv.push_str(&format!("+1212{}{:04}\n", 200 + i / 10_000, i % 10_000));
        }
        outdial_control::import::import_contacts(
            &svc,
            org.id,
            campaign.id,
            "bench.csv",
            csv.as_bytes(),
        )
        .await?;
        let mut env = base_fleet_env(&config);
        env.insert("OUTDIAL_LOG__FILTER".into(), "warn".into());
        env.insert(
            "OUTDIAL_DIALER__GLOBAL_CONCURRENCY_LIMIT".into(),
            "5000".into(),
        );
        env.insert("OUTDIAL_CHANNELS__POOLS__CAMPAIGN".into(), "5000".into());
        let log_dir = crate::setup::workspace_root().join(".demo/bench-pacing");
        let opts = FleetOptions {
            bin_dir: sibling_bin_dir()?,
            log_dir,
            env,
            sim_env: sim_env(&[]),
            dialers,
        };
        let mut fleet = Fleet::start(&opts).await?;
        transition::apply(
            &svc,
            campaign.id,
            Some(org.id),
            CampaignCommand::Start,
            "bench",
            None,
        )
        .await?;
        let deadline = Instant::now() + Duration::from_secs(seconds + 60);
        let times = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let t = sim_call_times(&http, &fleet.sim_url).await?;
            if t.first().is_some_and(|f| {
                t.last()
                    .is_some_and(|l| l - f >= seconds * 1_000 + WARM_UP_MS)
            }) || Instant::now() > deadline
            {
                break t;
            }
        };
        fleet.stop(Duration::from_secs(20)).await;
        let Some(&first) = times.first() else {
            bail!("no call reached the simulator at {cps} cps")
        };
        // Skip a 2 s warm-up (the first admission and worker start-up), then measure
        // `seconds`. The rate is (n − 1) / (last − first): unlike a count in a fixed window it
        // does not depend on where the grid falls against the window's edges.
        let start = first + WARM_UP_MS;
        let window: Vec<u64> = times
            .iter()
            .copied()
            .filter(|t| *t >= start && *t < start + seconds * 1_000)
            .collect();
        let span_ms = match (window.first(), window.last()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64,
            _ => bail!("too few starts at {cps} cps to measure"),
        };
        let achieved = (window.len() - 1) as f64 * 1_000.0 / span_ms;
        let ideal = 1_000.0 / cps;
        let mut jitter: Vec<f64> = window
            .windows(2)
            .map(|w| ((w[1] - w[0]) as f64 - ideal).abs())
            .collect();
        jitter.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&jitter, 50.0), percentile(&jitter, 99.0));
        println!(
            "{cps:>8} {:>10} {achieved:>10.3} {:>8.4} {p50:>9.2} ms {p99:>9.2} ms",
            window.len(),
            achieved / cps
        );
        rows.push((cps, achieved / cps, p99));
    }
    let worst = rows.iter().map(|(_, r, _)| *r).fold(1.0_f64, |w, r| {
        if (r - 1.0).abs() > (w - 1.0).abs() {
            r
        } else {
            w
        }
    });
    let worst_jitter = rows.iter().map(|(_, _, j)| *j).fold(0.0_f64, f64::max);
    println!("pacing: worst achieved/configured = {worst:.4}, p99 jitter = {worst_jitter:.2} ms");
    Ok(())
}

async fn seed_dispatch(svc: &Services, size: &DispatchSeed) -> anyhow::Result<()> {
    let started = Instant::now();
    svc.store
        .seed_dispatch_benchmark(size, svc.clock.now())
        .await?;
    println!(
        "seeded {} contacts, {} organizations, {} campaigns at {} cps each in {:.1} s",
        size.contacts,
        size.orgs,
        size.campaigns,
        size.cps,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn dispatch(
    config: Config,
    size: DispatchSeed,
    seconds: u64,
    dialers: usize,
    concurrency: usize,
    pg_connections: u32,
    database: &str,
) -> anyhow::Result<()> {
    let (svc, config) = fresh_environment(config, database).await?;
    seed_dispatch(&svc, &size).await?;
    let mut env = base_fleet_env(&config);
    env.insert(
        "OUTDIAL_LOG__FILTER".into(),
        "warn,outdial_dialer::dispatch=debug".into(),
    );
    env.insert(
        "OUTDIAL_DIALER__GLOBAL_CONCURRENCY_LIMIT".into(),
        "5000".into(),
    );
    env.insert("OUTDIAL_CHANNELS__POOLS__CAMPAIGN".into(), "10000".into());
    env.insert(
        "OUTDIAL_QUEUES__DIALER_CONCURRENCY".into(),
        concurrency.to_string(),
    );
    env.insert(
        "OUTDIAL_QUEUES__HEALTH_CONCURRENCY".into(),
        concurrency.to_string(),
    );
    // Six processes share the server's 100 connections.
    env.insert(
        "OUTDIAL_POSTGRES__MAX_CONNECTIONS".into(),
        pg_connections.to_string(),
    );
    // 2,000 campaigns each finishing a call every 2 s would ask for ~1,000 aggregations a
    // second with the default 1 s stats throttle; the benchmark measures dispatch.
    env.insert("OUTDIAL_STATS__THROTTLE_MS".into(), "10000".into());
    let log_dir = crate::setup::workspace_root().join(".demo/bench-dispatch");
    let opts = FleetOptions {
        bin_dir: sibling_bin_dir()?,
        log_dir: log_dir.clone(),
        env,
        sim_env: sim_env(&[]),
        dialers,
    };
    // Every campaign is already dialing in Postgres; give each its first tick (before the
    // fleet starts, so these and not the maintenance job's restored ticks run). The first
    // ticks are spread over one tick interval at each campaign's phase (as maintenance
    // restores them), as for campaigns started at different moments: all 2,000 in the same millisecond would keep them in lockstep — a burst of
    // 2,000 starts every 2 s instead of 1,000 a second (measured: 136 to 1,926 starts in
    // consecutive seconds).
    let now_ms = svc.clock.now_ms();
    let ids = svc.store.campaign_ids().await?;
    let interval_us = tick_interval_us(size.cps);
    let ticks: Vec<_> = ids
        .iter()
        .map(|id| {
            let planned = now_ms * 1_000 + phase_us(id.0, interval_us);
            DialerJob::VoiceTick {
                campaign_id: *id,
                planned_us: Some(planned),
            }
            .at(us_to_due_ms(planned))
        })
        .collect();
    svc.dialer_queue.enqueue(&ticks, now_ms).await?;
    let mut fleet = Fleet::start(&opts).await?;
    println!("fleet of {dialers} dialers running; warming up 10 s, then measuring {seconds} s");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let from = svc.clock.now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let to = svc.clock.now();
    let (starts, completed) = svc.store.attempts_between(from, to).await?;
    fleet.stop(Duration::from_secs(30)).await;

    let mut cycles: Vec<f64> = Vec::new();
    for i in 1..=dialers {
        let log = std::fs::read_to_string(log_dir.join(format!("outdial-dialer-{i}.log")))
            .context("dialer log")?;
        cycles.extend(
            log.lines()
                .filter(|l| l.contains("dispatch cycle"))
                .filter_map(|l| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix("duration_ms="))
                        .and_then(|v| v.parse::<f64>().ok())
                }),
        );
    }
    // Skip the warm-up cycles.
    let measured: Vec<f64> = cycles.iter().copied().skip(10).collect();
    let mut sorted = measured;
    sorted.sort_by(f64::total_cmp);
    let rate = starts as f64 / (to - from).num_milliseconds() as f64 * 1_000.0;
    println!(
        "{} dispatch cycles measured: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        sorted.len(),
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "attempts started: {starts} in {:.1} s; completed: {completed}",
        (to - from).num_milliseconds() as f64 / 1_000.0
    );
    println!(
        "dispatch: cycle p99 = {:.1} ms, starts = {rate:.0}/s",
        percentile(&sorted, 99.0)
    );
    Ok(())
}
