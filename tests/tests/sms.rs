//! SMS campaigns through the real engine on a manual clock (product §6).

use std::collections::BTreeMap;

use outdial_clock::Clock;
use outdial_control::spec::CampaignSpec;
use outdial_control::transition;
use outdial_domain::campaign::{CampaignCommand, CampaignStatus, Channel};
use outdial_domain::sms::SmsStatus;
use outdial_domain::{CampaignId, OrgId};
use outdial_e2e::InProcess;
use outdial_store::sms::SmsMessage;

const GAP_MS: i64 = 15 * 60_000;

fn dids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("+1212555{:04}", 9000 + i)).collect()
}

fn prospects(n: usize, area: &str) -> String {
    let mut s = String::from("phone\n");
    for i in 0..n {
        s.push_str(&format!("+1{area}555{:04}\n", 1000 + i));
    }
    s
}

async fn sms_campaign(e: &InProcess, org: OrgId, csv: &str) -> CampaignId {
    let spec = CampaignSpec {
        name: "texts".into(),
        channel: Some(Channel::Sms),
        message_body: Some("Your appointment is tomorrow. Reply STOP to opt out.".into()),
        ..CampaignSpec::default()
    };
    let c = e.campaign(org, spec).await;
    e.import(org, c, csv).await;
    transition::apply(&e.svc, c, Some(org), CampaignCommand::Start, "test", None)
        .await
        .expect("start");
    c
}

/// Per DID, the recording times of its texts in ms, in order.
fn by_did(messages: &[SmsMessage]) -> BTreeMap<i64, Vec<i64>> {
    let mut out: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for m in messages {
        out.entry(m.did_id.0)
            .or_default()
            .push(m.created_at.timestamp_millis());
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_dids_send_one_text_every_90_s_and_each_ends_as_its_receipts_say() {
    let e = InProcess::start(|_, sim| {
        sim.sms_mix = [("delivered".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let numbers = dids(10);
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let org = e.org("acme", 10, &refs).await;
    // 24 prospects; one goes on the DNC list after import, two get other receipts.
    let csv = prospects(24, "312");
    e.script("+13125551001", &["undelivered"]).await;
    e.script("+13125551002", &["failed"]).await;
    let c = sms_campaign(&e, org, &csv).await;
    e.svc
        .store
        .add_suppressions(
            org,
            &[outdial_e2e::e164("+13125551003")],
            "dnc",
            e.clock.now(),
        )
        .await
        .expect("dnc");
    let t0 = e.clock.now_ms();
    // Step the clock 30 s at a time (each step runs everything due) until the campaign ends.
    e.quiesce().await;
    for step in 1..=100 {
        if e.svc.store.campaign(c, None).await.expect("c").status == CampaignStatus::Completed {
            break;
        }
        e.advance_to(t0 + step * 30_000).await;
    }
    assert_eq!(
        e.svc.store.campaign(c, None).await.expect("c").status,
        CampaignStatus::Completed
    );

    let messages = e.svc.store.campaign_sms(c).await.expect("sms");
    assert_eq!(
        messages.len(),
        23,
        "one text per prospect except the DNC one"
    );
    // One text every 15 min × 60 000 / 10 DIDs = 90 000 ms, on a fixed grid from the start.
    for (k, m) in messages.iter().enumerate() {
        assert_eq!(
            m.created_at.timestamp_millis() - t0,
            90_000 * k as i64,
            "text {k}"
        );
    }
    // Every DID texts at most once per 15 minutes; with 10 DIDs each is used every 900 s.
    for (did, times) in by_did(&messages) {
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= GAP_MS,
                "DID {did} texted twice within the gap: {w:?}"
            );
        }
    }
    assert_eq!(by_did(&messages).len(), 10);

    let contacts = e.svc.store.campaign_contacts(c).await.expect("contacts");
    let status_of = |phone: &str| {
        let ct = contacts
            .iter()
            .find(|x| x.phone_numbers[0] == phone)
            .expect("contact");
        (
            ct.status.as_str().to_owned(),
            ct.disposition.map(|d| d.as_str().to_owned()),
        )
    };
    assert_eq!(
        status_of("+13125551000"),
        ("delivered".into(), Some("delivered".into()))
    );
    assert_eq!(
        status_of("+13125551001"),
        ("failed".into(), Some("undelivered".into()))
    );
    assert_eq!(
        status_of("+13125551002"),
        ("failed".into(), Some("failed".into()))
    );
    assert_eq!(status_of("+13125551003").0, "cancelled");
    let delivered = messages
        .iter()
        .filter(|m| m.status == SmsStatus::Delivered)
        .count();
    assert_eq!(delivered, 21);
    assert!(messages.iter().all(|m| {
        m.provider_sid
            .as_deref()
            .is_some_and(|s| s.starts_with("SM"))
    }));
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_did_texts_twice_within_the_gap_with_three_dialers_racing() {
    let e = InProcess::start(|_, _| {}).await;
    let numbers = dids(5);
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let org = e.org("acme", 10, &refs).await;
    // Three campaigns of one organization share its five DIDs: each campaign's drip alone
    // (every 180 s) would use every DID, so together they contend for every DID.
    let mut campaigns = Vec::new();
    for area in ["312", "415", "617"] {
        campaigns.push(sms_campaign(&e, org, &prospects(15, area)).await);
    }
    let (_d2, w2) = e.extra_dialer().await;
    let (_d3, w3) = e.extra_dialer().await;
    let t0 = e.clock.now_ms();
    // One hour in 30 s steps; at every step the three dialers drain the queue concurrently.
    for step in 0..=120 {
        let at = t0 + step * 30_000;
        e.clock.set(outdial_clock::ms_to_datetime(at));
        for _ in 0..3 {
            let (a, b, c) = tokio::join!(
                e.dialer_worker.drain(10_000),
                w2.drain(10_000),
                w3.drain(10_000)
            );
            a.expect("dialer 1");
            b.expect("dialer 2");
            c.expect("dialer 3");
            e.quiesce().await;
        }
    }
    let mut all = Vec::new();
    for c in &campaigns {
        all.extend(e.svc.store.campaign_sms(*c).await.expect("sms"));
    }
    let per_did = by_did(&all);
    for (did, times) in &per_did {
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= GAP_MS,
                "DID {did} texted twice within the gap: {w:?}"
            );
        }
    }
    // Five DIDs over one hour (t0 … t0+60 min inclusive) can send at most 5 × 5 texts, and
    // the racing dialers keep every DID busy: each is used at least every 15 minutes once
    // the first tick that found it free ran (campaign ticks are 180 s apart).
    assert_eq!(per_did.len(), 5);
    assert!((20..=25).contains(&all.len()), "per DID: {per_did:?}");
    let contacts: std::collections::BTreeSet<i64> = all.iter().map(|m| m.contact_id.0).collect();
    assert_eq!(contacts.len(), all.len(), "a prospect texted twice");
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_campaign_without_usable_dids_pauses_until_resumed() {
    let e = InProcess::start(|_, _| {}).await;
    let org = e.org("nodids", 10, &[]).await;
    let c = sms_campaign(&e, org, &prospects(2, "312")).await;
    e.quiesce().await;
    assert_eq!(
        e.svc.store.campaign(c, None).await.expect("c").status,
        CampaignStatus::Paused
    );
    let log = e.svc.store.campaign_transitions(c).await.expect("log");
    let last = log.last().expect("transition");
    assert_eq!(last.actor, "dialer");
    // Stays paused however long we wait.
    e.advance_to(e.clock.now_ms() + 3_600_000).await;
    assert_eq!(
        e.svc.store.campaign(c, None).await.expect("c").status,
        CampaignStatus::Paused
    );
    assert!(e.svc.store.campaign_sms(c).await.expect("sms").is_empty());
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_whose_receipt_never_comes_fails_after_the_delivery_timeout() {
    let e = InProcess::start(|cfg, _| {
        cfg.dialer.sms_delivery_timeout_ms = 600_000;
        // Receipts go to a path nobody serves (404, not retried): they are lost.
        cfg.api.public_url = format!("{}/lost", cfg.api.public_url);
    })
    .await;
    let org = e.org("acme", 10, &["+12125559100"]).await;
    let c = sms_campaign(&e, org, &prospects(1, "415")).await;
    e.quiesce().await;
    let m = e.svc.store.campaign_sms(c).await.expect("sms");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].status, SmsStatus::Queued, "accepted, no receipt");
    assert_eq!(
        e.svc.store.campaign(c, None).await.expect("c").status,
        CampaignStatus::Dialing
    );
    e.advance_to(e.clock.now_ms() + 600_000).await;
    let m = e.svc.store.campaign_sms(c).await.expect("sms");
    assert_eq!(m[0].status, SmsStatus::Failed);
    let contacts = e.svc.store.campaign_contacts(c).await.expect("contacts");
    assert_eq!(contacts[0].status.as_str(), "failed");
    assert_eq!(contacts[0].disposition.map(|x| x.as_str()), Some("timeout"));
    assert_eq!(
        e.svc.store.campaign(c, None).await.expect("c").status,
        CampaignStatus::Completed
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_resends_a_recorded_text_whose_send_job_redis_lost() {
    let e = InProcess::start(|_, sim| {
        sim.sms_mix = [("delivered".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let org = e.org("acme", 10, &["+12125559100"]).await;
    let c = sms_campaign(&e, org, &prospects(1, "415")).await;
    // The tick records the message; then Redis loses every dialer job (its send included).
    assert!(matches!(
        e.dialer_worker.try_execute_once().await.expect("tick"),
        outdial_worker::Outcome::Processed { .. }
    ));
    let m = e.svc.store.campaign_sms(c).await.expect("sms");
    assert_eq!(m[0].status, SmsStatus::Pending);
    let mut conn = e.redis.pool.get().await.expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}bull:{{campaign-dialer}}:*", e.redis.prefix))
        .query_async(&mut *conn)
        .await
        .expect("keys");
    assert!(!keys.is_empty());
    let () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut *conn)
        .await
        .expect("del");
    // Past the maintenance grace (one maintenance interval), maintenance restores the send.
    let interval = e.svc.config.dialer.maintenance_interval_ms;
    e.advance_to(e.clock.now_ms() + 2 * interval + 1_000).await;
    let m = e.svc.store.campaign_sms(c).await.expect("sms");
    assert_eq!(m[0].status, SmsStatus::Delivered, "{m:?}");
    assert_eq!(
        e.svc.store.campaign(c, None).await.expect("c").status,
        CampaignStatus::Completed
    );
    e.finish().await;
}
