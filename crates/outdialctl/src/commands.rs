//! What each command does.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use outdial_control::dispatch::Planner;
use outdial_control::spec::{CampaignSpec, WindowSpec};
use outdial_control::transition;
use outdial_domain::campaign::{CampaignCommand, Channel};
use outdial_domain::phone::E164;
use outdial_domain::{CampaignId, OrgId};
use outdial_fleet::config::Config;
use outdial_fleet::services::Services;
use outdial_store::Store;
use serde_json::json;

use crate::cli::{self, Cli, Command};

/// Runs a parsed command.
///
/// Errors: whatever the command reports, with context.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = outdial_fleet::config::from_env()?;
    match cli.command {
        Command::Migrate { create } => migrate(&config, create).await,
        Command::Demo(args) => crate::demo::run(config, args).await,
        Command::Bench(cmd) => crate::bench::run(config, cmd).await,
        other => {
            let svc = connect(config).await?;
            dispatch(&svc, other).await
        }
    }
}

async fn connect(config: Config) -> anyhow::Result<Services> {
    let clock = outdial_fleet::services::clock_from_config(&config);
    Services::connect(config, clock).await
}

/// `migrate [--create]`.
///
/// Errors: the database is unreachable or a migration fails.
pub async fn migrate(config: &Config, create: bool) -> anyhow::Result<()> {
    let url = &config.postgres.url;
    if create {
        let name = url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let admin = outdial_store::replace_database(url, "postgres");
        outdial_store::ensure_database(&admin, &name)
            .await
            .with_context(|| format!("creating database {name}"))?;
    }
    let store = Store::connect(url, 2)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    store.migrate().await.context("applying migrations")?;
    println!("migrations applied to {url}");
    Ok(())
}

async fn org_id(store: &Store, org: &str) -> anyhow::Result<OrgId> {
    if let Ok(id) = org.parse::<i64>() {
        return Ok(store.org(OrgId(id)).await?.id);
    }
    Ok(store
        .org_by_name(org)
        .await?
        .with_context(|| format!("no organization named {org:?}"))?
        .id)
}

async fn dispatch(svc: &Services, command: Command) -> anyhow::Result<()> {
    let store = &svc.store;
    let now = svc.clock.now();
    match command {
        Command::Migrate { .. } | Command::Demo(_) | Command::Bench(_) => {} // handled before services are connected
        Command::Org(cli::OrgCommand::Create {
            name,
            concurrency_limit,
        }) => {
            let org = store.create_org(&name, concurrency_limit, now).await?;
            println!(
                "organization {} {:?} (concurrency_limit {})",
                org.id, org.name, org.concurrency_limit
            );
        }
        Command::Org(cli::OrgCommand::List) => {
            for o in store.orgs().await? {
                println!(
                    "{:>6}  {:<30} concurrency_limit {}",
                    o.id, o.name, o.concurrency_limit
                );
            }
        }
        Command::Token(cli::TokenCommand::Create { org, scopes, name }) => {
            let org = org_id(store, &org).await?;
            let (id, secret) = store.create_token(org, &name, &scopes, now).await?;
            eprintln!(
                "token {id} for organization {org} with scopes {}",
                scopes.join(",")
            );
            println!("{secret}");
        }
        Command::Did(cli::DidCommand::Add { org, numbers }) => {
            let org = org_id(store, &org).await?;
            for raw in numbers {
                let n = E164::parse(&raw).with_context(|| format!("caller ID {raw:?}"))?;
                let did = store.create_did(org, &n, now).await?;
                println!("DID {} {} ({})", did.id, did.e164, did.state);
            }
        }
        Command::Did(cli::DidCommand::List { org }) => {
            let org = match org {
                Some(o) => Some(org_id(store, &o).await?),
                None => None,
            };
            for d in store.dids(org).await? {
                println!(
                    "{:>6}  {}  {:<8} score {:.3} ({} calls)",
                    d.id,
                    d.e164,
                    d.state.as_str(),
                    d.health_score,
                    d.scored_calls
                );
            }
        }
        Command::Suppress(cli::SuppressCommand::Add { org, file, numbers }) => {
            let org = org_id(store, &org).await?;
            let mut all = numbers;
            if let Some(f) = file {
                all.extend(crate::setup::read_phone_column(
                    &std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?,
                )?);
            }
            let phones: Vec<E164> = all
                .iter()
                .map(|raw| E164::parse(raw).with_context(|| format!("suppression {raw:?}")))
                .collect::<anyhow::Result<_>>()?;
            let added = store.add_suppressions(org, &phones, "dnc", now).await?;
            println!(
                "{added} numbers added to the suppression list ({} given)",
                phones.len()
            );
        }
        Command::Import {
            file,
            campaign,
            json,
        } => {
            let c = store.campaign(CampaignId(campaign), None).await?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let name = file.file_name().map_or_else(
                || "contacts.csv".into(),
                |n| n.to_string_lossy().into_owned(),
            );
            let report =
                outdial_control::import::import_contacts(svc, c.org_id, c.id, &name, &bytes)
                    .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_import(&report);
            }
        }
        Command::Campaign(cmd) => campaign(svc, cmd).await?,
        Command::Dispatch(cli::DispatchCommand::Explain { json }) => explain(svc, json).await?,
        Command::Channels { repair, json } => channels(svc, repair, json).await?,
        Command::Queues { dead, json } => queues(svc, dead, json).await?,
    }
    Ok(())
}

/// Prints an import report: counts, then every rejected row.
pub fn print_import(r: &outdial_store::contacts::ImportReport) {
    println!(
        "upload {}: {} rows read, {} imported, {} malformed, {} duplicates, {} on the suppression list (cancelled at dial time)",
        r.upload_id, r.rows_read, r.imported, r.malformed, r.duplicates, r.suppressed
    );
    for rej in &r.rejections {
        println!("  row {:>5}: {}", rej.row, rej.error);
    }
}

async fn campaign(svc: &Services, cmd: cli::CampaignCommand) -> anyhow::Result<()> {
    let store = &svc.store;
    let control_cmd = |c: CampaignCommand, r: cli::CampaignRef| (c, r);
    let (command, target) = match cmd {
        cli::CampaignCommand::Create(c) => return create_campaign(svc, *c).await,
        cli::CampaignCommand::List { org } => {
            let org = match org {
                Some(o) => Some(org_id(store, &o).await?),
                None => None,
            };
            for c in store.campaigns(org).await? {
                println!(
                    "{:>6}  org {:<4} {:<8} {:<10} {:>6.1} cps  {}",
                    c.id,
                    c.org_id,
                    c.channel.as_str(),
                    c.status.as_str(),
                    c.calls_per_second,
                    c.name
                );
            }
            return Ok(());
        }
        cli::CampaignCommand::Status { id, json } => {
            return status(svc, CampaignId(id), json).await;
        }
        cli::CampaignCommand::Start(r) => control_cmd(CampaignCommand::Start, r),
        cli::CampaignCommand::Pause(r) => control_cmd(CampaignCommand::Pause, r),
        cli::CampaignCommand::Resume(r) => control_cmd(CampaignCommand::Resume, r),
        cli::CampaignCommand::Cancel(r) => control_cmd(CampaignCommand::Cancel, r),
    };
    let t = transition::apply(
        svc,
        CampaignId(target.id),
        None,
        command,
        "cli",
        target.reason.as_deref(),
    )
    .await?;
    println!(
        "campaign {}: {} → {}",
        t.campaign.id, t.from, t.campaign.status
    );
    if t.cancelled_contacts > 0 {
        println!("{} queued contacts cancelled", t.cancelled_contacts);
    }
    Ok(())
}

async fn create_campaign(svc: &Services, c: cli::CreateCampaign) -> anyhow::Result<()> {
    let org = org_id(&svc.store, &c.org).await?;
    let window = match &c.window {
        Some(w) => {
            let (start, end) = w
                .split_once('-')
                .with_context(|| format!("--window {w:?} must look like 09:00-20:00"))?;
            Some(WindowSpec {
                start: start.trim().into(),
                end: end.trim().into(),
                days: c.days.clone(),
            })
        }
        None => c.days.clone().map(|days| WindowSpec {
            start: "00:00".into(),
            end: "23:59".into(),
            days: Some(days),
        }),
    };
    let spec = CampaignSpec {
        name: c.name,
        channel: Some(c.channel.parse::<Channel>().map_err(anyhow::Error::msg)?),
        calls_per_second: c.cps,
        priority: c.priority,
        max_attempts_per_phone_number: c.max_attempts_per_number,
        retry_delay_ms: c.retry_delay_ms,
        window,
        timezone: c.timezone,
        caller_ids: c.caller_ids,
        message_body: c.message,
        ..CampaignSpec::default()
    };
    let created = crate::setup::new_campaign(svc, org, spec).await?;
    println!(
        "campaign {} {:?} created ({}, {} cps)",
        created.id,
        created.name,
        created.channel.as_str(),
        created.calls_per_second
    );
    Ok(())
}

/// `campaign status <id>`: product §11 progress report.
///
/// Errors: unknown campaign, database failures.
pub async fn status(svc: &Services, id: CampaignId, json_out: bool) -> anyhow::Result<()> {
    let store = &svc.store;
    let now = svc.clock.now();
    let outdial_store::stats::CampaignFigures {
        campaign: c,
        counts,
        attempts: figures,
    } = store.campaign_figures(id, None, now).await?;
    let outdial_store::stats::Tally {
        by_status,
        by_outcome: by_disposition,
        total,
        open,
    } = outdial_store::stats::tally(&counts);
    let since_last = figures
        .last_at
        .map(|t| (now - t).num_milliseconds() as f64 / 1_000.0);
    if json_out {
        let out = json!({
            "campaign": c, "contacts": total, "finished": total - open, "open": open,
            "by_status": by_status, "by_disposition": by_disposition, "attempts": figures,
            "seconds_since_last_attempt": since_last,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "campaign {} {:?} — {} {}, {} cps, priority {}",
        c.id,
        c.name,
        c.channel.as_str(),
        c.status,
        c.calls_per_second,
        c.priority
    );
    let pct = if total > 0 {
        100.0 * (total - open) as f64 / total as f64
    } else {
        0.0
    };
    println!(
        "contacts: {total} expected, {} finished ({pct:.1}%), {open} not finished",
        total - open
    );
    let moving = match since_last {
        Some(s) if s < 10.0 => format!("moving (last attempt {s:.1} s ago)"),
        Some(s) => format!("NOT moving (last attempt {s:.0} s ago)"),
        None => "no attempt yet".into(),
    };
    println!(
        "attempts: {} started, {} in flight, {} answered; last minute {:.2}/s; {moving}",
        figures.attempts,
        figures.in_flight,
        figures.answered,
        figures.last_minute as f64 / 60.0
    );
    println!("by status:      {}", fmt_counts(&by_status));
    println!("by disposition: {}", fmt_counts(&by_disposition));
    Ok(())
}

fn fmt_counts(m: &BTreeMap<String, i64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn channels(svc: &Services, repair: bool, json_out: bool) -> anyhow::Result<()> {
    let now = svc.clock.now_ms();
    let mut rows = Vec::new();
    for s in svc.channels.status_all(now).await? {
        let report = if repair {
            Some(svc.channels.repair(&s.pool, now).await?)
        } else {
            None
        };
        rows.push((s, report));
    }
    if json_out {
        let out: Vec<_> = rows
            .iter()
            .map(|(s, r)| json!({ "status": s, "drift": s.drift(), "repair": r }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{:<10} {:>5} {:>7} {:>6} {:>8} {:>6} {:>8}",
        "pool", "max", "count", "live", "expired", "drift", "ttl_s"
    );
    for (s, r) in rows {
        println!(
            "{:<10} {:>5} {:>7} {:>6} {:>8} {:>6} {:>8}",
            s.pool,
            s.max,
            s.count,
            s.live_holders,
            s.expired_holders,
            s.drift(),
            s.ttl_s
        );
        if let Some(r) = r {
            println!(
                "  repaired: count {} → {} ({} expired holders dropped)",
                r.before, r.after, r.expired_dropped
            );
        }
    }
    Ok(())
}

async fn queues(svc: &Services, dead: usize, json_out: bool) -> anyhow::Result<()> {
    let now = svc.clock.now_ms();
    let mut out = Vec::new();
    macro_rules! one {
        ($q:expr) => {{
            let counts = $q.counts(now).await?;
            let letters = if dead > 0 {
                $q.dead_letters(dead).await?
            } else {
                Vec::new()
            };
            out.push((Arc::new($q.name().to_owned()), counts, letters));
        }};
    }
    one!(svc.dialer_queue);
    one!(svc.dispatch_queue);
    one!(svc.health_queue);
    one!(svc.stats_queue);
    if json_out {
        let v: Vec<_> = out
            .iter()
            .map(|(n, c, d)| json!({ "queue": **n, "counts": c, "dead_letters": d }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<18} {:>8} {:>8} {:>7} {:>6} {:>14}",
        "queue", "waiting", "delayed", "active", "dead", "oldest_late_ms"
    );
    for (name, c, letters) in out {
        let late = c
            .oldest_due_ms
            .filter(|d| *d <= now)
            .map_or_else(|| "-".to_owned(), |d| (now - d).to_string());
        println!(
            "{:<18} {:>8} {:>8} {:>7} {:>6} {:>14}",
            name, c.waiting, c.delayed, c.active, c.dead, late
        );
        for d in letters {
            println!(
                "  dead {} ({}, attempt {:?}): {}",
                d.id,
                d.kind.unwrap_or_default(),
                d.attempt,
                d.error
            );
        }
    }
    Ok(())
}

/// `dispatch explain`.
///
/// Errors: database or Redis failures.
pub async fn explain(svc: &Services, json_out: bool) -> anyhow::Result<()> {
    let e = Planner::new(svc.clone()).explain(svc.clock.now()).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    let pools: Vec<String> = e
        .pools
        .iter()
        .map(|(p, max, n)| format!("{p} {n}/{max}"))
        .collect();
    println!(
        "dispatch at {}: global limit {}, active {}, free {}; channel pools: {}",
        e.at.format("%Y-%m-%d %H:%M:%S UTC"),
        e.global_limit,
        e.active_total,
        e.free,
        pools.join(", ")
    );
    println!(
        "{:>6} {:>6} {:>7} {:>6} {:>7} {:>6}",
        "org", "limit", "active", "room", "demand", "alloc"
    );
    for o in &e.orgs {
        println!(
            "{:>6} {:>6} {:>7} {:>6} {:>7} {:>6}",
            o.org_id, o.limit, o.active, o.room, o.demand, o.allocated
        );
    }
    for c in &e.campaigns {
        let p = &c.plan;
        let state = if c.dialing { "dialing" } else { "NOT dialing" };
        println!(
            "campaign {} (org {}, {} cps, priority {}, {}): {state} — admitted {}, in calls {}, due fetched {}",
            p.campaign_id,
            p.org_id,
            p.calls_per_second,
            p.priority,
            c.status,
            p.locked,
            p.dialing,
            p.candidates
        );
        for r in &c.reasons {
            println!("    {r}");
        }
    }
    if e.campaigns.is_empty() {
        println!("no voice campaign is dialing or paused");
    }
    Ok(())
}
