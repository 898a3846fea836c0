//! The real binaries as separate processes — carrier simulator, API, two dialers, health,
//! stats — run a small campaign on the real services; every contact ends as its scripted
//! outcomes say, and every process stops cleanly on SIGTERM.

use std::collections::BTreeMap;
use std::time::Duration;

use outdial_dialer::control::CampaignSpec;
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
        .create_did(org.id, "+12125550999", pinned)
        .await
        .expect("did");
    store
        .add_suppressions(org.id, &["+12125550106".into()], "dnc", pinned)
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
                (c.status.to_string(), c.disposition.clone(), c.attempt_count),
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
