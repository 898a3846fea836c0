//! `outdialctl demo` — the main job: a voice campaign and an SMS campaign side by side
//! through the whole fleet, on the local Postgres and Redis, in a few minutes.
//!
//! 1. (Under `cargo run`) builds the fleet's binaries, so they match this `outdialctl`.
//! 2. Re-creates the demo database, migrates it, clears the fleet's Redis keys.
//! 3. Seeds an organization with 20 caller IDs across US area codes, its suppression list
//!    and an API token; creates a voice campaign at `--cps` and an SMS campaign texting the
//!    first `--sms-prospects` rows (one text per DID per `--sms-gap-ms`); imports the
//!    shipped CSV and prints the import report.
//! 4. Starts the carrier simulator, the API, two dialers, health and stats as separate
//!    processes, all on one clock pinned to 18:00 UTC today (a US afternoon: every zone's
//!    calling window is open whatever the hour of the run), with shortened delays.
//! 5. Starts both campaigns through the API and shows a progress bar until every contact
//!    and prospect is finished.
//! 6. Stops every process with SIGTERM and prints the summary: contacts by status and
//!    disposition, attempts, achieved calls per second, channel peak; prospects and texts
//!    by status, the shortest gap between two texts of one DID; DID scores and states.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use outdial_control::spec::CampaignSpec;
use outdial_domain::campaign::CampaignStatus;
use outdial_domain::contact::{CompletedBy, Disposition};
use outdial_domain::phone::E164;
use outdial_domain::{CampaignId, OrgId};
use outdial_fleet::config::Config;
use outdial_fleet::services::Services;
use outdial_store::campaigns::Campaign;

use crate::cli::DemoArgs;
use crate::fleet::{Fleet, FleetOptions, sibling_bin_dir};
use crate::setup::{base_fleet_env, build_fleet_if_under_cargo, fresh_environment, workspace_root};

/// Caller IDs of the demo organization: 20 numbers across the contacts' area codes.
const DEMO_DIDS: [&str; 20] = [
    "+12125550190",
    "+13055550190",
    "+14045550190",
    "+16175550190",
    "+17045550190",
    "+13125550190",
    "+12145550190",
    "+17135550190",
    "+16125550190",
    "+13035550190",
    "+18015550190",
    "+15055550190",
    "+16025550190",
    "+14805550190",
    "+12065550190",
    "+12135550190",
    "+14155550190",
    "+15035550190",
    "+17025550190",
    "+19165550190",
];

/// The simulator's delivery mix for the demo's texts.
const DEMO_SMS_MIX: &str = "delivered=0.90,undelivered=0.07,failed=0.03";

/// The simulator's outcome mix for the demo: mostly answered, some retries.
const DEMO_MIX: &str =
    "human=0.50,human_hangup=0.10,machine=0.12,no_answer=0.14,busy=0.05,failed=0.05,silent=0.04";

/// Runs the demo.
///
/// Errors: a service is unreachable, a binary is missing, a process fails to start or dies,
/// or the campaign does not finish within `--timeout-s`. Processes are stopped in every case.
pub async fn run(config: Config, args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin_dir = sibling_bin_dir()?;
    build_fleet_if_under_cargo(&bin_dir)?;
    crate::fleet::check_binaries(&bin_dir)?;
    let root = workspace_root();
    let file = |p: &Path| -> PathBuf {
        if p.exists() || p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        }
    };
    let (contacts, suppressions, unallocated) = (
        file(&args.contacts),
        file(&args.suppressions),
        file(&args.unallocated),
    );
    let log_dir = if args.log_dir.is_absolute() {
        args.log_dir.clone()
    } else {
        root.join(&args.log_dir)
    };

    // Database and Redis.
    let mut config = config;
    config.channels.pools.insert("campaign".into(), 150);
    config.dialer.sms_gap_ms = args.sms_gap_ms;
    let (svc, config) = fresh_environment(config, &args.database).await?;
    let db_url = config.postgres.url.clone();
    let now = Utc::now();
    println!(
        "[{:>5.1} s] demo database {db_url} migrated; fleet clock pinned to {} (real time {})",
        started.elapsed().as_secs_f64(),
        svc.clock.now().format("%Y-%m-%d %H:%M UTC"),
        now.format("%H:%M UTC")
    );

    let Seeded {
        org,
        campaign,
        token,
        csv,
    } = seed(&svc, &args, &contacts, &suppressions, started).await?;
    let sms_campaign = if args.sms_prospects > 0 {
        Some(sms_campaign(&svc, org, &csv, &args).await?)
    } else {
        None
    };

    // Fleet.
    let mut env = fleet_env(&config);
    env.insert(
        "OUTDIAL_DIALER__SMS_GAP_MS".into(),
        args.sms_gap_ms.to_string(),
    );
    let sim_env = sim_env(&config, &unallocated);
    let opts = FleetOptions {
        bin_dir,
        log_dir: log_dir.clone(),
        env,
        sim_env,
        dialers: args.dialers,
    };
    let mut fleet = Fleet::start(&opts).await?;
    println!(
        "[{:>5.1} s] fleet started: {}",
        started.elapsed().as_secs_f64(),
        fleet
            .pids()
            .iter()
            .map(|(n, p)| format!("{n} ({p})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "API {}  carrier simulator {}  logs {}",
        fleet.api_url,
        fleet.sim_url,
        log_dir.display()
    );

    let ids: Vec<CampaignId> = std::iter::once(campaign.id).chain(sms_campaign).collect();
    let outcome = drive(&svc, &fleet, &ids, &token, &args).await;
    let statuses = fleet.stop(Duration::from_secs(15)).await;
    let leftover = leftover_processes(&fleet);
    let (channel_peak, dialing_secs) = match &outcome {
        Ok(v) => *v,
        Err(_) => (0, 0.0),
    };
    let result = outcome.map(|_| ());
    summary(
        &svc,
        campaign.id,
        sms_campaign,
        channel_peak,
        dialing_secs,
        started.elapsed(),
        &statuses,
        &leftover,
    )
    .await?;
    result?;
    if !leftover.is_empty() {
        bail!("processes left behind: {leftover:?}");
    }
    Ok(())
}

/// Starts the campaigns through the API, shows progress until all complete. Returns the
/// channel peak and the time until the first campaign (the voice one) completed, s.
async fn drive(
    svc: &Services,
    fleet: &Fleet,
    ids: &[CampaignId],
    token: &str,
    args: &DemoArgs,
) -> anyhow::Result<(i64, f64)> {
    let http = reqwest::Client::new();
    for id in ids {
        let resp = http
            .post(format!("{}/api/campaigns/{id}/start", fleet.api_url))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("starting campaign {id}"))?;
        if !resp.status().is_success() {
            bail!(
                "starting campaign {id}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
    }
    let began = Instant::now();
    let mut total = 0i64;
    for id in ids {
        total += svc
            .store
            .contact_counts(*id)
            .await?
            .iter()
            .map(|c| c.count)
            .sum::<i64>();
    }
    let bar = if args.no_progress {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::try_from(total).unwrap_or(0))
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} contacts finished  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut peak = 0i64;
    let mut voice_secs: Option<f64> = None;
    let mut last_log = Instant::now();
    let deadline = began + Duration::from_secs(args.timeout_s);
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    loop {
        let count = svc
            .channels
            .status("campaign", svc.clock.now_ms())
            .await
            .map(|s| s.count)
            .unwrap_or(0);
        peak = peak.max(count);
        let mut finished = 0i64;
        let mut done = 0usize;
        for id in ids {
            let counts = svc.store.contact_counts(*id).await?;
            finished += counts
                .iter()
                .filter(|c| !c.status.is_open())
                .map(|c| c.count)
                .sum::<i64>();
            let status = svc.store.campaign(*id, None).await?.status;
            match status {
                CampaignStatus::Completed => done += 1,
                CampaignStatus::Dialing => {}
                other => {
                    bar.abandon();
                    bail!("campaign {id} is {other}, not dialing (see the logs)");
                }
            }
            if *id == ids[0] && status == CampaignStatus::Completed && voice_secs.is_none() {
                voice_secs = Some(began.elapsed().as_secs_f64());
            }
        }
        let figures = svc.store.attempt_figures(ids[0], svc.clock.now()).await?;
        bar.set_position(u64::try_from(finished).unwrap_or(0));
        bar.set_message(format!(
            "{} call attempts, {:.1} calls/s, {} channels in use",
            figures.attempts,
            figures.last_minute as f64 / 60.0_f64.min(began.elapsed().as_secs_f64().max(1.0)),
            count
        ));
        if args.no_progress && last_log.elapsed() > Duration::from_secs(10) {
            println!(
                "  {finished}/{total} finished, {} call attempts, {count} channels in use",
                figures.attempts
            );
            last_log = Instant::now();
        }
        if done == ids.len() {
            bar.finish();
            let secs = began.elapsed().as_secs_f64();
            return Ok((peak, voice_secs.unwrap_or(secs)));
        }
        if Instant::now() > deadline {
            bar.abandon();
            bail!(
                "the campaigns did not finish within {} s ({finished}/{total} contacts finished)",
                args.timeout_s
            );
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = &mut ctrl_c => { bar.abandon(); bail!("interrupted"); }
        }
    }
}

fn fleet_env(config: &Config) -> BTreeMap<String, String> {
    let mut env = base_fleet_env(config);
    let pairs: Vec<(&str, String)> = vec![
        ("OUTDIAL_DIALER__GLOBAL_CONCURRENCY_LIMIT", "150".into()),
        ("OUTDIAL_CHANNELS__POOLS__CAMPAIGN", "150".into()),
        ("OUTDIAL_DIALER__LOOKAHEAD_MS", "1500".into()),
        ("OUTDIAL_DIALER__COMPLETION_TIMEOUT_MS", "10000".into()),
        ("OUTDIAL_DIALER__MAINTENANCE_INTERVAL_MS", "5000".into()),
        ("OUTDIAL_DIALER__DID_LIFECYCLE_INTERVAL_MS", "5000".into()),
        ("OUTDIAL_HEALTH__COOLDOWN_MS", "30000".into()),
        ("OUTDIAL_HEALTH__WARMING_MS", "30000".into()),
    ];
    env.extend(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)));
    env
}

fn leftover_processes(fleet: &Fleet) -> Vec<String> {
    fleet
        .pids()
        .into_iter()
        .map(|(n, p)| format!("{n} ({p})"))
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn summary(
    svc: &Services,
    id: CampaignId,
    sms: Option<CampaignId>,
    channel_peak: i64,
    dialing_secs: f64,
    elapsed: Duration,
    statuses: &[(String, String)],
    leftover: &[String],
) -> anyhow::Result<()> {
    let store = &svc.store;
    let c = store.campaign(id, None).await?;
    let counts = store.contact_counts(id).await?;
    let attempts = store.campaign_attempts(id).await?;
    let outdial_store::stats::Tally {
        by_status,
        by_outcome: by_disposition,
        total,
        open,
    } = outdial_store::stats::tally(&counts);
    let mut attempt_disp: BTreeMap<String, i64> = BTreeMap::new();
    let mut completed_by: BTreeMap<String, i64> = BTreeMap::new();
    for a in &attempts {
        *attempt_disp
            .entry(a.disposition.map_or("open", Disposition::as_str).to_owned())
            .or_default() += 1;
        *completed_by
            .entry(
                a.completed_by
                    .map_or("open", CompletedBy::as_str)
                    .to_owned(),
            )
            .or_default() += 1;
    }
    let starts: Vec<i64> = attempts
        .iter()
        .map(|a| a.created_at.timestamp_millis())
        .collect();
    let busiest = busiest_minute(&starts);
    let overall = if dialing_secs > 0.0 {
        attempts.len() as f64 / dialing_secs
    } else {
        0.0
    };
    println!();
    println!("== outdial demo summary ==");
    println!(
        "campaign {} {:?}: {} after {:.0} s of dialing ({:.0} s in all)",
        c.id,
        c.name,
        c.status,
        dialing_secs,
        elapsed.as_secs_f64()
    );
    println!(
        "contacts: {total}, {} finished, {open} not finished",
        total - open
    );
    println!("  by status:      {}", join(&by_status));
    println!("  by disposition: {}", join(&by_disposition));
    println!("attempts: {}", attempts.len());
    println!("  by disposition: {}", join(&attempt_disp));
    println!("  ended by:       {}", join(&completed_by));
    println!(
        "achieved calls per second: {busiest:.2} over the busiest minute (configured {}), {overall:.2} averaged over the whole run incl. the retry tail",
        c.calls_per_second
    );
    println!(
        "channel peak: {channel_peak} of {} (pool campaign)",
        svc.config
            .channels
            .pools
            .get("campaign")
            .copied()
            .unwrap_or(0)
    );
    if let Some(sms) = sms {
        sms_summary(svc, sms).await?;
    }
    println!("caller IDs:");
    for d in store.dids(Some(c.org_id)).await? {
        println!(
            "  {} {:<8} score {:.3} over {:>3} calls{}",
            d.e164,
            d.state.as_str(),
            d.health_score,
            d.scored_calls,
            d.cooldown_until
                .map(|t| format!(", cooling until {}", t.format("%H:%M:%S")))
                .unwrap_or_default()
        );
    }
    println!(
        "processes: {}",
        statuses
            .iter()
            .map(|(n, s)| format!("{n}: {s}"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if leftover.is_empty() {
        println!("no process left behind");
    }
    Ok(())
}

/// The SMS campaign's part of the summary: prospects and texts by status, texts per DID and
/// the shortest gap between two texts of one DID (never below the configured gap).
async fn sms_summary(svc: &Services, id: CampaignId) -> anyhow::Result<()> {
    let store = &svc.store;
    let c = store.campaign(id, None).await?;
    let outdial_store::stats::Tally {
        by_status,
        by_outcome: by_disposition,
        ..
    } = outdial_store::stats::tally(&store.contact_counts(id).await?);
    let messages = store.campaign_sms(id).await?;
    let mut texts: BTreeMap<String, i64> = BTreeMap::new();
    let mut per_did: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for m in &messages {
        *texts.entry(m.status.to_string()).or_default() += 1;
        per_did
            .entry(m.did_id.0)
            .or_default()
            .push(m.created_at.timestamp_millis());
    }
    let min_gap = per_did
        .values_mut()
        .filter_map(|v| {
            v.sort_unstable();
            v.windows(2).map(|w| w[1] - w[0]).min()
        })
        .min();
    let span_s = messages.first().zip(messages.last()).map_or(0.0, |(f, l)| {
        (l.created_at - f.created_at).num_milliseconds() as f64 / 1e3
    });
    println!(
        "SMS campaign {} {:?}: {}; {} prospects",
        c.id,
        c.name,
        c.status,
        by_status.values().sum::<i64>()
    );
    println!("  by status:      {}", join(&by_status));
    println!("  by disposition: {}", join(&by_disposition));
    println!(
        "  texts: {} over {span_s:.0} s from {} DIDs ({}); shortest gap between two texts of one DID: {} (configured {} ms)",
        messages.len(),
        per_did.len(),
        join(&texts),
        min_gap.map_or_else(|| "-".to_owned(), |g| format!("{g} ms")),
        svc.config.dialer.sms_gap_ms
    );
    Ok(())
}

/// Most attempt starts within any 60 s window, per second.
fn busiest_minute(starts_ms: &[i64]) -> f64 {
    let mut sorted = starts_ms.to_vec();
    sorted.sort_unstable();
    let mut best = 0usize;
    let mut lo = 0usize;
    for hi in 0..sorted.len() {
        while sorted[hi] - sorted[lo] >= 60_000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    let span = sorted.last().zip(sorted.first()).map_or(0, |(l, f)| l - f);
    if span < 60_000 && span > 0 {
        sorted.len() as f64 / (span as f64 / 1_000.0)
    } else {
        best as f64 / 60.0
    }
}

fn join(m: &BTreeMap<String, i64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What [`seed`] created.
struct Seeded {
    /// the demo organization
    org: OrgId,
    /// the voice campaign, with the contact file imported
    campaign: Campaign,
    /// a bearer token of the organization (campaigns, contacts, events)
    token: String,
    /// the contact file's bytes (the SMS campaign imports its head)
    csv: Vec<u8>,
}

/// Seeds the demo: the organization with [`DEMO_DIDS`], its suppression list from
/// `suppressions`, a token, and the voice campaign at `args.cps` with `contacts` imported
/// (printing the import report).
///
/// Errors: a file cannot be read or holds a malformed number; Postgres failures.
async fn seed(
    svc: &Services,
    args: &DemoArgs,
    contacts: &Path,
    suppressions: &Path,
    started: Instant,
) -> anyhow::Result<Seeded> {
    let t = svc.clock.now();
    let org = svc.store.create_org("demo", Some(150), t).await?;
    for n in DEMO_DIDS {
        svc.store.create_did(org.id, &E164::parse(n)?, t).await?;
    }
    let dnc = std::fs::read(suppressions)
        .with_context(|| format!("reading {}", suppressions.display()))?;
    let dnc: Vec<E164> = crate::setup::read_phone_column(&dnc)?
        .iter()
        .map(|raw| E164::parse(raw).with_context(|| format!("suppression {raw:?}")))
        .collect::<anyhow::Result<_>>()?;
    svc.store.add_suppressions(org.id, &dnc, "dnc", t).await?;
    let scopes: Vec<String> = [
        "campaigns:read",
        "campaigns:manage",
        "contacts:write",
        "events:read",
    ]
    .map(String::from)
    .to_vec();
    let (_, token) = svc.store.create_token(org.id, "demo", &scopes, t).await?;
    let spec = CampaignSpec {
        name: "Demo voice campaign".into(),
        calls_per_second: Some(args.cps),
        retry_delay_ms: Some(5_000),
        voicemail_drop: Some(true),
        ..CampaignSpec::default()
    };
    let campaign = crate::setup::new_campaign(svc, org.id, spec).await?;
    let bytes =
        std::fs::read(contacts).with_context(|| format!("reading {}", contacts.display()))?;
    let report =
        outdial_control::import::import_contacts(svc, org.id, campaign.id, "contacts.csv", &bytes)
            .await?;
    println!(
        "[{:>5.1} s] organization {} with {} caller IDs and {} suppressed numbers; campaign {} at {} cps",
        started.elapsed().as_secs_f64(),
        org.id,
        DEMO_DIDS.len(),
        dnc.len(),
        campaign.id,
        args.cps
    );
    println!(
        "import of {}: {} rows read, {} imported, {} malformed, {} duplicates, {} on the suppression list",
        contacts.display(),
        report.rows_read,
        report.imported,
        report.malformed,
        report.duplicates,
        report.suppressed
    );
    for r in report.rejections.iter().take(6) {
        println!("  row {:>5}: {}", r.row, r.error);
    }
    if report.rejections.len() > 6 {
        println!(
            "  … {} more rejected rows (outdialctl import --json shows them all)",
            report.rejections.len() - 6
        );
    }

    Ok(Seeded {
        org: org.id,
        campaign,
        token,
        csv: bytes,
    })
}

/// Creates the demo's SMS campaign and imports the first `args.sms_prospects` rows of the
/// contact file `csv` into it (printing the report). Returns its id.
///
/// Errors: Postgres failures.
async fn sms_campaign(
    svc: &Services,
    org: OrgId,
    csv: &[u8],
    args: &DemoArgs,
) -> anyhow::Result<CampaignId> {
    let spec = CampaignSpec {
        name: "Demo SMS campaign".into(),
        channel: Some(outdial_domain::campaign::Channel::Sms),
        message_body: Some(
            "Reminder: your appointment is tomorrow at 10:00. Reply STOP to opt out.".into(),
        ),
        ..CampaignSpec::default()
    };
    let sms = crate::setup::new_campaign(svc, org, spec).await?;
    let text = String::from_utf8_lossy(csv);
    let head: String = text
        .lines()
        .take(args.sms_prospects + 1)
        .map(|l| format!("{l}\n"))
        .collect();
    let r = outdial_control::import::import_contacts(
        svc,
        org,
        sms.id,
        "contacts.csv (head)",
        head.as_bytes(),
    )
    .await?;
    println!(
        "SMS campaign {}: first {} rows → {} prospects ({} malformed, {} duplicates, {} suppressed); one text per DID per {} ms",
        sms.id, r.rows_read, r.imported, r.malformed, r.duplicates, r.suppressed, args.sms_gap_ms
    );
    Ok(sms.id)
}

/// The simulator's variables for the demo: its outcome mixes, 30× time, a fixed seed, the
/// unallocated numbers of `unallocated`, and the carrier account of `config`.
fn sim_env(config: &Config, unallocated: &Path) -> BTreeMap<String, String> {
    [
        ("OUTDIAL_SIM_MIX", DEMO_MIX.to_owned()),
        ("OUTDIAL_SIM_SMS_MIX", DEMO_SMS_MIX.to_owned()),
        ("OUTDIAL_SIM_TIME_SCALE", "30".to_owned()),
        ("OUTDIAL_SIM_SEED", "20261121".to_owned()),
        (
            "OUTDIAL_SIM_UNALLOCATED_FILE",
            unallocated.display().to_string(),
        ),
        (
            "OUTDIAL_SIM_AUTH_TOKEN",
            config.carrier.auth_token.expose().to_owned(),
        ),
        (
            "OUTDIAL_SIM_ACCOUNT_SID",
            config.carrier.account_sid.clone(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
