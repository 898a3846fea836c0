//! A small voice campaign through the whole engine, in process on a manual clock: every
//! contact ends in the state its scripted outcomes call for (product §5 outcome table).

use std::collections::BTreeMap;

use outdial_clock::Clock;
use outdial_control::spec::CampaignSpec;
use outdial_control::transition;
use outdial_domain::campaign::CampaignCommand;
use outdial_e2e::InProcess;

const CONTACTS: &str = "external_id,name,phone,phone_2\n\
c1,Human,+12125550101,\n\
c2,Retry then human,+12125550102,\n\
c3,Never answers,+12125550103,\n\
c4,Busy,+12125550104,\n\
c5,Unallocated first,+12125550105,+13125550205\n\
c6,On the DNC list,+12125550106,\n\
c7,Silent then human,+12125550107,\n\
c8,Voicemail twice,+12125550108,\n\
c9,Failed then human,+12125550109,\n\
c10,Hangs up,+12125550110,\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_contact_ends_as_its_outcomes_say() {
    let e = InProcess::start(|cfg, sim| {
        cfg.dialer.completion_timeout_ms = 60_000;
        sim.unallocated.insert("+12125550105".into());
    })
    .await;
    let org = e.org("acme", 10, &["+12125550999", "+13125550999"]).await;
    let spec = CampaignSpec {
        name: "spring".into(),
        calls_per_second: Some(5.0),
        retry_delay_ms: Some(1_000),
        ..CampaignSpec::default()
    };
    let campaign = e.campaign(org, spec).await;
    let report = e.import(org, campaign, CONTACTS).await;
    assert_eq!(
        (report.imported, report.malformed, report.duplicates),
        (10, 0, 0)
    );
    e.svc
        .store
        .add_suppressions(
            org,
            &[outdial_e2e::e164("+12125550106")],
            "dnc",
            e.clock.now(),
        )
        .await
        .expect("dnc");
    for (number, outcomes) in [
        ("+12125550101", &["human"][..]),
        ("+12125550102", &["no_answer", "human"]),
        ("+12125550103", &["no_answer", "no_answer"]),
        ("+12125550104", &["busy"]),
        ("+13125550205", &["human"]),
        ("+12125550107", &["silent", "human"]),
        ("+12125550108", &["machine", "machine"]),
        ("+12125550109", &["failed", "human"]),
        ("+12125550110", &["human_hangup"]),
    ] {
        e.script(number, outcomes).await;
    }
    transition::apply(
        &e.svc,
        campaign,
        Some(org),
        CampaignCommand::Start,
        "test",
        None,
    )
    .await
    .expect("start");

    e.run_until_completed(&[campaign], 5_000, 2_000).await;

    let contacts = e
        .svc
        .store
        .campaign_contacts(campaign)
        .await
        .expect("contacts");
    let mut got: BTreeMap<String, (String, Option<String>, i32, usize)> = BTreeMap::new();
    for c in &contacts {
        let attempts = e.svc.store.contact_attempts(c.id).await.expect("attempts");
        got.insert(
            c.external_id.clone().unwrap_or_default(),
            (
                c.status.to_string(),
                c.disposition.map(|d| d.to_string()),
                c.attempt_count,
                attempts.len(),
            ),
        );
    }
    let want = |s: &str, d: Option<&str>, count: i32, attempts: usize| {
        (s.to_owned(), d.map(str::to_owned), count, attempts)
    };
    assert_eq!(got["c1"], want("completed", Some("human_connected"), 1, 1));
    assert_eq!(got["c2"], want("completed", Some("human_connected"), 2, 2));
    assert_eq!(got["c3"], want("exhausted", Some("no_answer"), 2, 2));
    assert_eq!(got["c4"], want("completed", Some("busy"), 1, 1));
    // Attempt 0 on the unallocated primary; its second attempt is skipped; attempt 2 uses
    // the second number.
    assert_eq!(got["c5"], want("completed", Some("human_connected"), 3, 2));
    assert_eq!(got["c6"], want("cancelled", None, 0, 0));
    assert_eq!(got["c7"], want("completed", Some("human_connected"), 2, 2));
    assert_eq!(got["c8"], want("exhausted", Some("voicemail"), 2, 2));
    assert_eq!(got["c9"], want("completed", Some("human_connected"), 2, 2));
    assert_eq!(got["c10"], want("completed", Some("human_hangup"), 1, 1));

    // c7's first attempt ended by the durable timeout, the others by webhook.
    let c7 = contacts
        .iter()
        .find(|c| c.external_id.as_deref() == Some("c7"))
        .expect("c7");
    let c7_attempts = e.svc.store.contact_attempts(c7.id).await.expect("attempts");
    assert_eq!(
        c7_attempts[0].completed_by.map(|x| x.as_str()),
        Some("timeout")
    );
    assert_eq!(
        c7_attempts[1].completed_by.map(|x| x.as_str()),
        Some("webhook")
    );
    let c5 = contacts
        .iter()
        .find(|c| c.external_id.as_deref() == Some("c5"))
        .expect("c5");
    let c5_attempts = e.svc.store.contact_attempts(c5.id).await.expect("attempts");
    assert_eq!(
        (
            c5_attempts[0].disposition.map(|x| x.as_str()),
            c5_attempts[1].to_number.as_str()
        ),
        (Some("invalid_number"), "+13125550205")
    );

    // The carrier saw exactly one call per attempt that reached it: never a duplicate.
    let calls = e.sim_calls().await;
    let mut per_number: BTreeMap<String, usize> = BTreeMap::new();
    for c in &calls {
        *per_number.entry(c.to.clone()).or_default() += 1;
    }
    let attempts = e
        .svc
        .store
        .campaign_attempts(campaign)
        .await
        .expect("attempts");
    let placed = attempts
        .iter()
        .filter(|a| a.disposition.map(|x| x.as_str()) != Some("invalid_number"))
        .count();
    assert_eq!(calls.len(), placed, "one carrier call per placed attempt");
    assert_eq!(
        per_number.get("+12125550106"),
        None,
        "DNC number never called"
    );

    // Every attempt wrote a health event; channels are all back.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM did_health_events")
        .fetch_one(&e.db.pool)
        .await
        .expect("events");
    assert_eq!(events as usize, attempts.len());
    let pool = e
        .svc
        .channels
        .status("campaign", e.clock.now_ms())
        .await
        .expect("channels");
    assert_eq!((pool.count, pool.live_holders), (0, 0));

    // Completion is exactly once: running the remaining timeout jobs changes nothing.
    e.advance_to(e.clock.now_ms() + 120_000).await;
    let after: Vec<(String, i32)> = e
        .svc
        .store
        .campaign_contacts(campaign)
        .await
        .expect("contacts")
        .iter()
        .map(|c| (c.status.to_string(), c.attempt_count))
        .collect();
    let before: Vec<(String, i32)> = contacts
        .iter()
        .map(|c| (c.status.to_string(), c.attempt_count))
        .collect();
    assert_eq!(after, before);
    let stats = e
        .svc
        .store
        .campaign_stats(campaign)
        .await
        .expect("stats")
        .expect("stats published");
    assert_eq!(stats.0["terminal"], 10);
    e.finish().await;
}
