//! The real binaries as separate processes — carrier simulator, API, two dialers, health,
//! stats — run a small campaign on the real services; every contact ends as its scripted
//! outcomes say, and every process stops cleanly on SIGTERM.

use std::collections::BTreeMap;
use std::time::Duration;

use outdial_control::spec::CampaignSpec;
use outdial_domain::campaign::CampaignStatus;
use outdial_store::Store;
use outdial_test_support::{TestDb, TestRedis};
use outdialctl::fleet::{Fleet, FleetOptions, sibling_bin_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_run_a_campaign_to_the_end() {
    let db = TestDb::new(&outdial_store::MIGRATOR).await;
    let redis = TestRedis::new().await;
    let store = Store::new(db.pool.clone());
    let now = chrono::Utc::now();
    // Pin the fleet's clock to 18:00 UTC today: every US calling window is open.
    let pinned = now
        .date_naive()
        .and_hms_opt(18, 0, 0)
        .map_or(now, |t| t.and_utc());
    let offset_ms = (pinned - now).num_milliseconds();
    let org = store
        .create_org("acme", Some(20), pinned)
        .await
        .expect("org");
    store
        .create_did(org.id, &outdial_e2e::e164("+12125550999"), pinned)
        .await
        .expect("did");
    store
        .add_suppressions(org.id, &[outdial_e2e::e164("+12125550106")], "dnc", pinned)
        .await
        .expect("dnc");
    let spec = CampaignSpec {
        name: "fleet".into(),
        calls_per_second: Some(10.0),
        retry_delay_ms: Some(500),
        ..CampaignSpec::default()
    };
    let campaign = store
        .create_campaign(
            &spec.into_new(org.id, &Default::default()).expect("spec"),
            pinned,
        )
        .await
        .expect("campaign");
    let contacts = "external_id,phone,phone_2\nc1,+12125550101,\nc2,+12125550102,\nc3,+12125550103,\nc4,+12125550104,\nc5,+12125550105,+13125550205\nc6,+12125550106,\nc7,+12125550107,\n";
    let parsed =
        outdial_domain::import::parse_contacts_csv(contacts.as_bytes(), "America/New_York")
            .expect("csv");
    store
        .import_contacts(
            org.id,
            Some(campaign.id),
            "c.csv",
            parsed.rows_read,
            &parsed.contacts,
            parsed.rejections,
            0,
            pinned,
        )
        .await
        .expect("import");
    let (_, token) = store
        .create_token(org.id, "t", &["campaigns:manage".into()], pinned)
        .await
        .expect("token");

    let unallocated = std::env::temp_dir().join(format!(
        "{}unallocated.txt",
        redis.prefix.trim_end_matches(':')
    ));
    std::fs::write(&unallocated, "+12125550105\n").expect("unallocated file");
    let env: BTreeMap<String, String> = [
        ("OUTDIAL_POSTGRES__URL", db.url.clone()),
        ("OUTDIAL_REDIS__URL", redis.url.clone()),
        ("OUTDIAL_REDIS__PREFIX", redis.prefix.clone()),
        ("OUTDIAL_CLOCK__OFFSET_MS", offset_ms.to_string()),
        ("OUTDIAL_DIALER__COMPLETION_TIMEOUT_MS", "3000".into()),
        ("OUTDIAL_DIALER__WINDOW_JITTER_MS", "0".into()),
        ("OUTDIAL_LOG__FILTER", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let sim_env: BTreeMap<String, String> = [
        ("OUTDIAL_SIM_INSTANT", "true".to_owned()),
        (
            "OUTDIAL_SIM_UNALLOCATED_FILE",
            unallocated.display().to_string(),
        ),
        ("OUTDIAL_SIM_MIX", "human=1.0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let log_dir = std::env::temp_dir().join(format!(
        "outdial-fleet-{}",
        redis.prefix.trim_end_matches(':')
    ));
    let opts = FleetOptions {
        bin_dir: sibling_bin_dir().expect("bin dir"),
        log_dir: log_dir.clone(),
        env,
        sim_env,
        dialers: 2,
    };
    let mut fleet = Fleet::start(&opts).await.expect("fleet started");

    let http = reqwest::Client::new();
    for (number, outcomes) in [
        ("+12125550102", vec!["no_answer", "human"]),
        ("+12125550103", vec!["busy"]),
        ("+12125550104", vec!["machine", "machine"]),
        ("+12125550107", vec!["silent", "human_hangup"]),
    ] {
        let r = http
            .post(format!("{}/sim/script", fleet.sim_url))
            .json(&serde_json::json!({ number: outcomes }))
            .send()
            .await
            .expect("script");
        assert!(r.status().is_success());
    }
    let r = http
        .post(format!(
            "{}/api/campaigns/{}/start",
            fleet.api_url, campaign.id
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while store
        .campaign(campaign.id, None)
        .await
        .expect("campaign")
        .status
        != CampaignStatus::Completed
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "campaign not completed within 60 s; logs in {}",
            log_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let statuses = fleet.stop(Duration::from_secs(20)).await;
    for (name, status) in &statuses {
        assert_eq!(
            status, "exit status: 0",
            "{name} stopped cleanly on SIGTERM"
        );
    }

    let got: BTreeMap<String, (String, Option<String>, i32)> = store
        .campaign_contacts(campaign.id)
        .await
        .expect("contacts")
        .into_iter()
        .map(|c| {
            (
                c.external_id.clone().unwrap_or_default(),
                (
                    c.status.to_string(),
                    c.disposition.map(|d| d.to_string()),
                    c.attempt_count,
                ),
            )
        })
        .collect();
    let want = |s: &str, d: Option<&str>, n: i32| (s.to_owned(), d.map(str::to_owned), n);
    assert_eq!(got["c1"], want("completed", Some("human_connected"), 1));
    assert_eq!(got["c2"], want("completed", Some("human_connected"), 2));
    assert_eq!(got["c3"], want("completed", Some("busy"), 1));
    assert_eq!(got["c4"], want("exhausted", Some("voicemail"), 2));
    assert_eq!(got["c5"], want("completed", Some("human_connected"), 3));
    assert_eq!(got["c6"], want("cancelled", None, 0));
    assert_eq!(got["c7"], want("completed", Some("human_hangup"), 2));
    let _ = std::fs::remove_file(&unallocated);
    db.cleanup().await;
}

/// Issue 3's fleet test: 3 dialer processes, 5 organizations whose limits add up to twice
/// the global limit, 20,000 contacts, calls that last minutes. Sampled every 100 ms: the
/// global, per-organization and per-pool active counts never exceed their limits, each
/// organization's share matches the product §4 allocation within one slot, and no contact
/// ever has two overlapping attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_dialers_never_exceed_any_limit_and_share_fairly() {
    const GLOBAL: u32 = 40;
    let limits: [i32; 5] = [5, 10, 15, 20, 30];
    let areas = ["212", "312", "415", "617", "713"];
    let db = TestDb::new(&outdial_store::MIGRATOR).await;
    let redis = TestRedis::new().await;
    let store = Store::new(db.pool.clone());
    let now = chrono::Utc::now();
    let pinned = now
        .date_naive()
        .and_hms_opt(18, 0, 0)
        .map_or(now, |t| t.and_utc());
    let offset_ms = (pinned - now).num_milliseconds();

    let mut orgs = Vec::new();
    for (i, (limit, area)) in limits.iter().zip(areas).enumerate() {
        let org = store
            .create_org(&format!("org{i}"), Some(*limit), pinned)
            .await
            .expect("org");
        for d in 0..3 {
            store
                .create_did(
                    org.id,
                    &outdial_e2e::e164(&format!("+1{area}555019{d}")),
                    pinned,
                )
                .await
                .expect("did");
        }
        let spec = CampaignSpec {
            name: format!("c{i}"),
            calls_per_second: Some(50.0),
            ..CampaignSpec::default()
        };
        let campaign = store
            .create_campaign(
                &spec.into_new(org.id, &Default::default()).expect("spec"),
                pinned,
            )
            .await
            .expect("campaign");
        let mut csv = String::from("phone\n");
        for exchange in 200..240 {
            for line in 0..100 {
                csv.push_str(&format!("+1{area}{exchange}{line:04}\n"));
            }
        }
        let parsed = outdial_domain::import::parse_contacts_csv(csv.as_bytes(), "America/New_York")
            .expect("csv");
        assert_eq!(parsed.contacts.len(), 4_000);
        store
            .import_contacts(
                org.id,
                Some(campaign.id),
                "c.csv",
                parsed.rows_read,
                &parsed.contacts,
                vec![],
                0,
                pinned,
            )
            .await
            .expect("import");
        store
            .transition_campaign(
                campaign.id,
                None,
                outdial_domain::campaign::CampaignCommand::Start,
                "test",
                None,
                pinned,
            )
            .await
            .expect("start");
        orgs.push((org.id, *limit));
    }

    let env: BTreeMap<String, String> = [
        ("OUTDIAL_POSTGRES__URL", db.url.clone()),
        ("OUTDIAL_REDIS__URL", redis.url.clone()),
        ("OUTDIAL_REDIS__PREFIX", redis.prefix.clone()),
        ("OUTDIAL_CLOCK__OFFSET_MS", offset_ms.to_string()),
        (
            "OUTDIAL_DIALER__GLOBAL_CONCURRENCY_LIMIT",
            GLOBAL.to_string(),
        ),
        ("OUTDIAL_CHANNELS__POOLS__CAMPAIGN", "100".into()),
        ("OUTDIAL_LOG__FILTER", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // Every call is answered and talks for 20 s to 3 min: calls outlast the test.
    let sim_env: BTreeMap<String, String> = [
        ("OUTDIAL_SIM_MIX", "human=1.0".to_owned()),
        ("OUTDIAL_SIM_RING_MIN_MS", "100".to_owned()),
        ("OUTDIAL_SIM_RING_MAX_MS", "200".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let log_dir = std::env::temp_dir().join(format!(
        "outdial-fleet-limits-{}",
        redis.prefix.trim_end_matches(':')
    ));
    let opts = FleetOptions {
        bin_dir: sibling_bin_dir().expect("bin dir"),
        log_dir: log_dir.clone(),
        env,
        sim_env,
        dialers: 3,
    };
    let mut fleet = Fleet::start(&opts).await.expect("fleet started");

    let demands: Vec<outdial_domain::allocation::OrgDemand> = orgs
        .iter()
        .map(|(id, limit)| outdial_domain::allocation::OrgDemand {
            org_id: *id,
            limit: u32::try_from(*limit).expect("limit"),
            active: 0,
            demand: 4_000,
        })
        .collect();
    let expected = outdial_domain::allocation::allocate(GLOBAL, &demands);
    let pools = outdial_channels::Channels::new(
        redis.pool.clone(),
        redis.prefix.clone(),
        outdial_channels::ChannelConfig::default(),
    );
    let mut samples = 0;
    let mut settled_samples = 0;
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(12) {
        let active: Vec<(i64, i64)> = sqlx::query_as("SELECT org_id, count(*) FROM contacts WHERE status IN ('locked', 'dialing') GROUP BY org_id")
            .fetch_all(&db.pool)
            .await
            .expect("active");
        let total: i64 = active.iter().map(|(_, n)| n).sum();
        assert!(
            total <= i64::from(GLOBAL),
            "global active {total} > {GLOBAL}"
        );
        for (org, n) in &active {
            let limit = orgs
                .iter()
                .find(|(id, _)| id.0 == *org)
                .map(|(_, l)| *l)
                .expect("org");
            assert!(
                *n <= i64::from(limit),
                "org {org}: {n} active > limit {limit}"
            );
        }
        let pool = pools
            .status(
                "campaign",
                chrono::Utc::now().timestamp_millis() + offset_ms,
            )
            .await
            .expect("pool");
        assert!(pool.count <= 100 && i64::try_from(pool.live_holders).expect("n") <= 100);
        assert!(
            pool.count <= i64::from(GLOBAL),
            "channels {} above the global limit",
            pool.count
        );
        if total == i64::from(GLOBAL) {
            // Under contention each organization holds its allocated share (within a slot).
            for ((id, _), want) in orgs.iter().zip(&expected) {
                let have = active
                    .iter()
                    .find(|(o, _)| *o == id.0)
                    .map_or(0, |(_, n)| *n);
                assert!(
                    (have - i64::from(*want)).abs() <= 1,
                    "org {id}: {have} active, allocation {want} ({expected:?})"
                );
            }
            settled_samples += 1;
        }
        samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(samples >= 60, "sampled {samples} times");
    assert!(
        settled_samples >= 30,
        "the global limit was reached and held ({settled_samples} samples at {GLOBAL})"
    );

    // No contact ever had two attempts open at once, and the carrier never had two calls to
    // one number at once.
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM call_attempts a JOIN call_attempts b
           ON a.contact_id = b.contact_id AND a.id < b.id
          AND b.created_at < COALESCE(a.ended_at, 'infinity') AND a.created_at < COALESCE(b.ended_at, 'infinity')",
    )
    .fetch_one(&db.pool)
    .await
    .expect("overlap");
    assert_eq!(overlapping, 0);
    let calls: Vec<serde_json::Value> = reqwest::get(format!("{}/sim/calls", fleet.sim_url))
        .await
        .expect("calls")
        .json()
        .await
        .expect("json");
    let mut numbers = std::collections::HashSet::new();
    for c in &calls {
        assert!(
            numbers.insert(c["to"].as_str().expect("to").to_owned()),
            "two calls to {}",
            c["to"]
        );
    }
    assert_eq!(
        calls.len() as i64,
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM call_attempts")
            .fetch_one(&db.pool)
            .await
            .expect("n")
    );

    let statuses = fleet.stop(Duration::from_secs(30)).await;
    for (name, status) in &statuses {
        assert_eq!(
            status,
            "exit status: 0",
            "{name} stopped cleanly; logs in {}",
            log_dir.display()
        );
    }
    db.cleanup().await;
}
