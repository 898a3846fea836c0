//! Dialing rules through the real engine, in process on a manual clock (product §4, §5).

use chrono::{DateTime, Duration, Utc};
use outdial_clock::Clock;
use outdial_control::spec::CampaignSpec;
use outdial_control::transition;
use outdial_domain::campaign::{CampaignCommand, CampaignStatus};
use outdial_domain::{CampaignId, OrgId};
use outdial_e2e::InProcess;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

fn csv(n: usize, area: &str) -> String {
    let mut s = String::from("phone\n");
    for i in 0..n {
        s.push_str(&format!("+1{area}555{:04}\n", 1000 + i));
    }
    s
}

async fn running_campaign(e: &InProcess, org: OrgId, cps: f64, contacts: &str) -> CampaignId {
    let spec = CampaignSpec {
        name: "c".into(),
        calls_per_second: Some(cps),
        retry_delay_ms: Some(1_000),
        ..CampaignSpec::default()
    };
    e.started_campaign(org, spec, contacts).await
}

/// When each attempt of `c` was started, ms since the epoch, in start order.
async fn start_times(e: &InProcess, c: CampaignId) -> Vec<i64> {
    e.svc
        .store
        .campaign_attempts(c)
        .await
        .expect("attempts")
        .iter()
        .map(|a| a.created_at.timestamp_millis())
        .collect()
}

/// Sets `c`'s pace straight in Postgres — no code path of ours, so no cache is told.
async fn edit_pace_in_postgres(e: &InProcess, c: CampaignId, calls_per_second: f64) {
    sqlx::query("UPDATE campaigns SET calls_per_second = $2 WHERE id = $1")
        .bind(c.0)
        .bind(calls_per_second)
        .execute(e.svc.store.pool())
        .await
        .expect("edit pace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_start_on_the_pacing_grid_without_drift() {
    let e = InProcess::start(|_, sim| {
        sim.mix = [("human".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let org = e.org("acme", 20, &["+12125550999"]).await;
    let c = running_campaign(&e, org, 3.0, &csv(9, "212")).await;
    e.run_until_completed(&[c], 2_000, 500).await;
    let starts = start_times(&e, c).await;
    assert_eq!(starts.len(), 9);
    // Tick k is planned at t0 + k·333 333 µs and due at that time rounded up to the ms:
    // the grid carries the exact plan, so no rounding accumulates.
    for (k, s) in starts.iter().enumerate() {
        let planned_us = k as i64 * 333_333;
        let due_ms = planned_us / 1_000 + i64::from(planned_us % 1_000 != 0);
        assert_eq!(s - starts[0], due_ms, "start {k}: {starts:?}");
    }
    e.finish().await;
}

/// A call completed by its status webhook withdraws its completion-timeout job with the
/// ack: finished calls leave nothing in Redis for `completion_timeout_ms` (at 1,000 calls a
/// second and the 30 min default that would be 1.8 million waiting jobs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_call_withdraws_its_timeout_job() {
    let e = InProcess::start(|_, sim| {
        sim.mix = [("human".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let org = e.org("acme", 20, &["+12125550999"]).await;
    let c = running_campaign(&e, org, 5.0, &csv(3, "212")).await;
    e.run_until_completed(&[c], 2_000, 500).await;
    assert_eq!(start_times(&e, c).await.len(), 3);
    let scheduled = || async {
        let n = e
            .svc
            .dialer_queue
            .counts(e.clock.now_ms())
            .await
            .expect("counts");
        n.waiting + n.delayed
    };
    // The last ticks stop on the completed campaign; the timeouts must already be gone.
    e.run_until(100, 20, || async { scheduled().await == 0 })
        .await;
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_whose_window_closed_before_its_tick_waits_for_the_next_opening() {
    let e = InProcess::start(|_, _| {}).await;
    // 20:59:58 in New York (EDT): the window is still open when the contact is admitted.
    e.clock.set(at("2026-07-02T00:59:58Z"));
    let org = e.org("acme", 10, &["+12125550999"]).await;
    let c = running_campaign(&e, org, 1.0, &csv(1, "212")).await;
    let report = e.dialer.run_cycle(e.clock.now()).await.expect("cycle");
    assert_eq!(report.admitted, 1);
    // 21:00:01 when the tick runs: closed.
    e.advance_to(e.clock.now_ms() + 3_000).await;
    let contact = &e.svc.store.campaign_contacts(c).await.expect("contacts")[0];
    assert_eq!(contact.status.as_str(), "queued");
    assert_eq!(
        contact.retry_after,
        at("2026-07-02T12:00:00Z"),
        "next 08:00 in New York"
    );
    assert!(
        e.svc
            .store
            .contact_attempts(contact.id)
            .await
            .expect("attempts")
            .is_empty(),
        "no call outside the window"
    );
    assert_eq!(
        e.svc
            .channels
            .status("campaign", e.clock.now_ms())
            .await
            .expect("pool")
            .count,
        0,
        "channel released"
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_channel_pool_backs_the_contact_off_for_five_seconds() {
    let e = InProcess::start(|cfg, _| {
        cfg.channels.pools.insert("campaign".into(), 1);
    })
    .await;
    let org = e.org("acme", 10, &["+12125550999"]).await;
    let c = running_campaign(&e, org, 1.0, &csv(1, "212")).await;
    assert_eq!(
        e.dialer
            .run_cycle(e.clock.now())
            .await
            .expect("cycle")
            .admitted,
        1
    );
    // 31 s later (more than half a 60 s lease: the tick checks the channel again), the
    // admitted contact's channel has lapsed and someone else holds the only one.
    e.clock.advance_ms(31_000);
    let contact = e
        .svc
        .store
        .campaign_contacts(c)
        .await
        .expect("contacts")
        .remove(0);
    let holder = outdial_domain::contact::channel_holder(contact.id, 0);
    let now = e.clock.now_ms();
    e.svc
        .channels
        .release("campaign", &[holder], now)
        .await
        .expect("release");
    assert_eq!(
        e.svc
            .channels
            .acquire("campaign", &["intruder".into()], now)
            .await
            .expect("acquire"),
        1
    );
    e.quiesce().await;
    let contact = e.svc.store.contact(contact.id).await.expect("contact");
    assert_eq!(contact.status.as_str(), "queued");
    assert_eq!(contact.retry_after, e.clock.now() + Duration::seconds(5));
    assert_eq!(
        contact.attempt_count, 0,
        "backpressure is not a failed attempt"
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_usable_caller_id_pauses_the_campaign_until_resumed() {
    let e = InProcess::start(|_, _| {}).await;
    let org = e.org("acme", 10, &[]).await;
    let c = running_campaign(&e, org, 1.0, &csv(2, "212")).await;
    let events = campaign_events(&e, c).await;
    e.quiesce().await;
    let campaign = e.svc.store.campaign(c, None).await.expect("campaign");
    assert_eq!(campaign.status, CampaignStatus::Paused);
    let log = e.svc.store.campaign_transitions(c).await.expect("log");
    let last = log.last().expect("transition");
    assert_eq!(
        (last.actor.as_str(), last.reason.as_deref()),
        ("dialer", Some("no healthy caller ID"))
    );
    let contacts = e.svc.store.campaign_contacts(c).await.expect("contacts");
    assert!(
        contacts
            .iter()
            .all(|x| x.status.as_str() == "queued" && x.attempt_count == 0),
        "nothing dialed, nothing lost"
    );
    let mut stream = events.into_on_message();
    let payloads = next_payloads(&mut stream, 2).await;
    assert!(
        payloads
            .iter()
            .any(|p| p.contains("campaign.paused.no_dids")),
        "{payloads:?}"
    );
    // It stays paused: time passing does not resume it.
    e.advance_to(e.clock.now_ms() + 60_000).await;
    assert_eq!(
        e.svc.store.campaign(c, None).await.expect("c").status,
        CampaignStatus::Paused
    );
    e.finish().await;
}

async fn futures_next<S: futures_util::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    futures_util::StreamExt::next(s).await
}

/// A subscription to campaign `c`'s events.
async fn campaign_events(e: &InProcess, c: CampaignId) -> redis::aio::PubSub {
    let mut events = e.redis.client.get_async_pubsub().await.expect("pubsub");
    events
        .subscribe(outdial_fleet::events::campaign_channel(&e.redis.prefix, c))
        .await
        .expect("subscribe");
    events
}

/// The payloads of the next `n` messages on `stream`, each waited for at most 5 s.
async fn next_payloads<S>(stream: &mut S, n: usize) -> Vec<String>
where
    S: futures_util::Stream<Item = redis::Msg> + Unpin,
{
    let mut out = Vec::new();
    for _ in 0..n {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), futures_next(stream))
            .await
            .expect("event")
            .expect("message");
        out.push(msg.get_payload::<String>().expect("payload"));
    }
    out
}

/// The auto-pause takes every transition's effects: the admitted contacts go back to
/// `queued` with their SIP channels released at once (not when the leases lapse), and
/// `campaign.status.changed` is published beside `campaign.paused.no_dids`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auto_pause_releases_admitted_channels_and_publishes_the_status_change() {
    let e = InProcess::start(|_, _| {}).await;
    let org = e.org("acme", 10, &[]).await;
    let c = running_campaign(&e, org, 1.0, &csv(3, "212")).await;
    let events = campaign_events(&e, c).await;
    let in_use = || async {
        e.svc
            .channels
            .status("campaign", e.clock.now_ms())
            .await
            .expect("pool")
            .count
    };
    let report = e.dialer.run_cycle(e.clock.now()).await.expect("cycle");
    assert_eq!(report.admitted, 2, "the pace buffer of 1 cps");
    assert_eq!(in_use().await, 2);
    // The campaign's tick finds an admitted contact and no caller ID: it pauses.
    e.dialer_worker.drain(100).await.expect("tick");
    assert_eq!(
        e.svc.store.campaign(c, None).await.expect("c").status,
        CampaignStatus::Paused
    );
    assert_eq!(
        in_use().await,
        0,
        "released with the pause, on the same clock"
    );
    let payloads = next_payloads(&mut events.into_on_message(), 2).await;
    assert!(
        payloads
            .iter()
            .any(|p| p.contains("campaign.status.changed")
                && p.contains("\"to\":\"paused\"")
                && p.contains("no healthy caller ID")),
        "{payloads:?}"
    );
    assert!(
        payloads
            .iter()
            .any(|p| p.contains("campaign.paused.no_dids")),
        "{payloads:?}"
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_status_callbacks_are_refused_and_write_nothing() {
    let e = InProcess::start(|_, _| {}).await;
    let token = e.svc.config.carrier.auth_token.expose().to_owned();
    let url = format!("{}/carrier/voice/status?attempt=1", e.api_url);
    let params = vec![
        ("CallSid".to_owned(), "CA1".to_owned()),
        ("CallStatus".to_owned(), "completed".to_owned()),
        ("CallDuration".to_owned(), "42".to_owned()),
    ];
    let post = |sig: Option<String>, target: String, body: Vec<(String, String)>| {
        let mut req = e.http.post(target).form(&body);
        if let Some(s) = sig {
            req = req.header("X-Twilio-Signature", s);
        }
        req.send()
    };
    let before = e
        .svc
        .dialer_queue
        .counts(e.clock.now_ms())
        .await
        .expect("counts");
    for (sig, target, body) in [
        (None, url.clone(), params.clone()),
        (Some("bogus".to_owned()), url.clone(), params.clone()),
        // Signed for attempt 2, replayed against attempt 1.
        (
            Some(outdial_carrier::signature::sign(
                &token,
                &url.replace("attempt=1", "attempt=2"),
                &params,
            )),
            url.clone(),
            params.clone(),
        ),
        // Signed, then a parameter altered.
        (
            Some(outdial_carrier::signature::sign(&token, &url, &params)),
            url.clone(),
            vec![
                params[0].clone(),
                params[1].clone(),
                ("CallDuration".into(), "600".into()),
            ],
        ),
    ] {
        let r = post(sig, target, body).await.expect("request");
        assert_eq!(r.status(), 403);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_signature");
    }
    assert_eq!(
        e.svc
            .dialer_queue
            .counts(e.clock.now_ms())
            .await
            .expect("counts"),
        before,
        "nothing enqueued"
    );
    let r = post(
        Some(outdial_carrier::signature::sign(&token, &url, &params)),
        url.clone(),
        params.clone(),
    )
    .await
    .expect("request");
    assert_eq!(r.status(), 204, "a genuine callback is accepted");
    assert_eq!(
        e.svc
            .dialer_queue
            .counts(e.clock.now_ms())
            .await
            .expect("counts")
            .waiting,
        before.waiting + 1
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_respects_global_org_and_pool_limits_with_the_spec_allocation() {
    let e = InProcess::start(|cfg, _| {
        cfg.dialer.global_concurrency_limit = 4;
    })
    .await;
    let a = e.org("a", 2, &["+12125550999"]).await;
    let b = e.org("b", 3, &["+13125550999"]).await;
    let ca = running_campaign(&e, a, 20.0, &csv(10, "212")).await;
    let cb = running_campaign(&e, b, 20.0, &csv(10, "312")).await;
    let report = e.dialer.run_cycle(e.clock.now()).await.expect("cycle");
    // free 4 over limits 2 and 3: shares 1.6 and 2.4 → floors 1 and 2, the leftover slot to
    // the larger remainder (a) → a 2, b 2.
    let alloc: Vec<(i64, u32, u32)> = report
        .orgs
        .iter()
        .map(|o| (o.org_id.0, o.allocated, o.admitted))
        .collect();
    assert_eq!(alloc, vec![(a.0, 2, 2), (b.0, 2, 2)]);
    assert_eq!(report.free, 4);
    let again = e.dialer.run_cycle(e.clock.now()).await.expect("cycle");
    assert_eq!((again.free, again.admitted), (0, 0), "global limit reached");
    assert_eq!(
        e.svc
            .channels
            .status("campaign", e.clock.now_ms())
            .await
            .expect("pool")
            .count,
        4,
        "one channel per admitted contact"
    );
    for c in [ca, cb] {
        let locked = e
            .svc
            .store
            .campaign_contacts(c)
            .await
            .expect("contacts")
            .iter()
            .filter(|x| x.status.as_str() == "locked")
            .count();
        assert_eq!(locked, 2);
    }
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_tick_sees_an_edited_pace() {
    // A tick reads the campaign's row version with its contact and keeps the settings it
    // cached at that version: an edit made straight in Postgres must reach the very next
    // tick, which then plans its successor at the new interval. Cycles are a minute apart
    // here, so no cycle re-reads the campaign (and refreshes the cache) in between.
    let e = InProcess::start(|cfg, sim| {
        cfg.dialer.poll_interval_ms = 60_000;
        sim.mix = [("human".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let org = e.org("acme", 20, &["+12125550999"]).await;
    let c = running_campaign(&e, org, 2.0, &csv(12, "212")).await;
    // 2 cps × 1.5 s lookahead: the first cycle admits 3, started 500 ms apart.
    e.run_until(100, 100, || async { !start_times(&e, c).await.is_empty() })
        .await;
    edit_pace_in_postgres(&e, c, 5.0).await;
    e.run_until(100, 100, || async { start_times(&e, c).await.len() >= 3 })
        .await;
    let t = start_times(&e, c).await;
    // The second tick was planned by the first (2 cps); it read 5 cps and planned the third
    // 200 ms after itself.
    assert_eq!(
        t.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>(),
        vec![500, 200],
        "starts {t:?}"
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_cycle_sees_a_pause_a_resume_and_an_edited_pace() {
    // The cycle keeps campaign settings between cycles and re-reads a campaign only when its
    // row changed: every change must still reach the very next cycle.
    let e = InProcess::start(|_, _| {}).await;
    let org = e.org("acme", 100, &["+12125550999"]).await;
    let c = running_campaign(&e, org, 2.0, &csv(40, "212")).await;
    let plan = |r: &outdial_dialer::dispatch::DispatchReport| {
        r.campaigns
            .iter()
            .find(|p| p.campaign_id == c)
            .map(|p| (p.calls_per_second, p.admitted))
    };
    // 2 cps × 1.5 s lookahead: 3 admitted ahead.
    let first = e.dialer.run_cycle(e.clock.now()).await.expect("cycle");
    assert_eq!(plan(&first), Some((2.0, 3)));
    let pause = |cmd| transition::apply(&e.svc, c, Some(org), cmd, "test", None);
    pause(CampaignCommand::Pause).await.expect("pause");
    let paused = e.dialer.run_cycle(e.clock.now()).await.expect("cycle");
    assert_eq!(plan(&paused), None, "a paused campaign is not planned");
    pause(CampaignCommand::Resume).await.expect("resume");
    let resumed = e.dialer.run_cycle(e.clock.now()).await.expect("cycle");
    assert_eq!(plan(&resumed), Some((2.0, 3)));
    // An edit made straight in Postgres (no code path of ours) is seen as well: 10 cps keeps
    // 15 ahead, 12 more than the 3 admitted.
    edit_pace_in_postgres(&e, c, 10.0).await;
    let edited = e.dialer.run_cycle(e.clock.now()).await.expect("cycle");
    assert_eq!(plan(&edited), Some((10.0, 12)));
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_stale_lock_sweep_give_channels_back() {
    let e = InProcess::start(|_, _| {}).await;
    let org = e.org("acme", 10, &["+12125550999"]).await;
    let cancelled = running_campaign(&e, org, 2.0, &csv(3, "212")).await;
    let paused = running_campaign(&e, org, 2.0, &csv(3, "312")).await;
    // Each campaign keeps ⌈2 cps × 1.5 s⌉ = 3 admitted ahead; each has exactly 3 contacts.
    assert_eq!(
        e.dialer
            .run_cycle(e.clock.now())
            .await
            .expect("cycle")
            .admitted,
        6
    );
    let pool = |e: &InProcess| {
        let ch = e.svc.channels.clone();
        let now = e.clock.now_ms();
        async move { ch.status("campaign", now).await.expect("pool").count }
    };
    assert_eq!(pool(&e).await, 6);

    let t = transition::apply(
        &e.svc,
        cancelled,
        Some(org),
        CampaignCommand::Cancel,
        "test",
        Some("wrong list"),
    )
    .await
    .expect("cancel");
    assert_eq!((t.cancelled_contacts, t.released.len()), (3, 3));
    assert_eq!(
        pool(&e).await,
        3,
        "the cancelled campaign's admitted contacts gave their channels back"
    );
    assert!(
        e.svc
            .store
            .campaign_contacts(cancelled)
            .await
            .expect("c")
            .iter()
            .all(|c| c.status.as_str() == "cancelled")
    );

    // Admitted contacts whose ticks never ran (their pod died): swept after 120 s, their
    // channels released, and — the campaign still dialing — admitted again under the same
    // channel holders, so the pool does not double-count them.
    e.clock.advance_ms(121_000);
    let report = e.dialer.run_cycle(e.clock.now()).await.expect("cycle");
    assert_eq!(
        (report.swept, report.admitted),
        (3, 3),
        "locked longer than 120 s"
    );
    assert_eq!(pool(&e).await, 3);
    let relocked = e.svc.store.campaign_contacts(paused).await.expect("c");
    assert!(
        relocked
            .iter()
            .all(|c| c.status.as_str() == "locked" && c.locked_at == Some(e.clock.now()))
    );

    // A pause hands admitted contacts back at once instead of letting them hold slots.
    let t = transition::apply(
        &e.svc,
        paused,
        Some(org),
        CampaignCommand::Pause,
        "test",
        None,
    )
    .await
    .expect("pause");
    assert_eq!(t.released.len(), 3);
    assert_eq!(pool(&e).await, 0);
    assert!(
        e.svc
            .store
            .campaign_contacts(paused)
            .await
            .expect("c")
            .iter()
            .all(|c| c.status.as_str() == "queued")
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_says_why_each_campaign_is_or_is_not_dialing() {
    let e = InProcess::start(|_, _| {}).await;
    let busy = e.org("busy", 1, &["+12125550999"]).await;
    let tokyo = e.org("tokyo", 10, &["+12125550998"]).await;
    let no_dids = e.org("no-dids", 10, &[]).await;
    let at_capacity = running_campaign(&e, busy, 1.0, &csv(5, "212")).await;
    let closed =
        running_campaign(&e, tokyo, 1.0, "phone,timezone\n+12125551000,Asia/Tokyo\n").await;
    let without = running_campaign(&e, no_dids, 1.0, &csv(2, "312")).await;
    let paused = running_campaign(&e, tokyo, 1.0, &csv(2, "415")).await;
    transition::apply(
        &e.svc,
        paused,
        Some(tokyo),
        CampaignCommand::Pause,
        "ops",
        Some("customer asked"),
    )
    .await
    .expect("pause");
    // The busy org's single slot is taken by the first cycle.
    e.dialer.run_cycle(e.clock.now()).await.expect("cycle");

    let x = e
        .dialer
        .planner()
        .explain(e.clock.now())
        .await
        .expect("explain");
    let find = |id: CampaignId| {
        x.campaigns
            .iter()
            .find(|c| c.plan.campaign_id == id)
            .expect("campaign listed")
    };
    let has = |id: CampaignId, text: &str| find(id).reasons.iter().any(|r| r.contains(text));
    assert!(
        has(at_capacity, "organization at capacity (1 of 1 active)"),
        "{:?}",
        find(at_capacity).reasons
    );
    assert!(find(at_capacity).dialing, "it has an admitted contact");
    assert!(
        has(
            closed,
            "calling window closed in every contact time zone until 2026-07-01 23:00 UTC"
        ),
        "{:?}",
        find(closed).reasons
    );
    assert!(!find(closed).dialing);
    assert!(
        has(without, "no usable caller ID"),
        "{:?}",
        find(without).reasons
    );
    assert!(
        has(paused, "paused: customer asked"),
        "{:?}",
        find(paused).reasons
    );
    let busy_org = x
        .orgs
        .iter()
        .find(|o| o.org_id == busy)
        .expect("org listed");
    assert_eq!((busy_org.limit, busy_org.active, busy_org.room), (1, 1, 0));

    // The same view is on the campaign's stats endpoint.
    let token = e.token(tokyo, &["campaigns:read"]).await;
    let stats: serde_json::Value = e
        .http
        .get(format!("{}/api/campaigns/{closed}/stats", e.api_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let reasons = stats["dispatch"]["campaign"]["reasons"]
        .as_array()
        .expect("reasons");
    assert!(
        reasons.iter().any(|r| r
            .as_str()
            .is_some_and(|r| r.contains("calling window closed"))),
        "{stats}"
    );
    assert_eq!(stats["dispatch"]["organization"]["limit"], 10);
    e.finish().await;
}

/// The numbers dialed in `c`, each with the hour (UTC) of its attempt, in order.
async fn dialed(e: &InProcess, c: CampaignId) -> Vec<(String, u32)> {
    use chrono::Timelike;
    e.svc
        .store
        .campaign_attempts(c)
        .await
        .expect("attempts")
        .iter()
        .map(|a| (a.to_number.to_string(), a.created_at.hour()))
        .collect()
}

/// product §5.2: the window is the called party's, checked for the number being dialed — its
/// area-code zone(s) and, when the upload states one, that zone too. The fleet starts at
/// 02:30 UTC on a January Wednesday: 21:30 in New York (closed), 20:30 in Chicago, 18:30 in
/// Los Angeles (open). Nobody is called outside the hours of every zone that may be theirs,
/// by the dispatch cycle or at start; each becomes callable when the last of its zones opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_number_is_dialed_only_inside_its_own_zones_window() {
    let e = InProcess::start_at(at("2026-01-07T02:30:00Z"), |_, sim| {
        sim.mix = [("no_answer".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let org = e.org("acme", 20, &["+13125550999"]).await;
    let spec = CampaignSpec {
        name: "zones".into(),
        calls_per_second: Some(10.0),
        max_attempts_per_phone_number: Some(1),
        retry_delay_ms: Some(1_000),
        ..CampaignSpec::default()
    };
    let csv = "phone,phone_2,timezone\n\
               +14155550100,+12125550100,\n\
               +12125550101,,America/Los_Angeles\n\
               +16175550102,,America/Chicago\n\
               +14155550103,,America/New_York\n\
               +13125550104,,America/New_York\n";
    let c = e.started_campaign(org, spec, csv).await;
    let run_for = |from: &str, seconds: i64| {
        let start = at(from).timestamp_millis();
        let e = &e;
        async move {
            for s in 0..=seconds {
                e.advance_to(start + s * 1_000).await;
            }
        }
    };
    // Evening: only the Pacific primary of the first contact; its 212 second number waits.
    run_for("2026-01-07T02:30:00Z", 30).await;
    assert_eq!(dialed(&e, c).await, vec![("+14155550100".to_owned(), 2)]);
    let first = &e.svc.store.campaign_contacts(c).await.expect("contacts")[0];
    assert_eq!(
        (
            first.status.as_str(),
            first.attempt_count,
            first.timezone.as_str()
        ),
        ("queued", 1, "America/New_York"),
        "the dispatch cycle now filters it on its second number's zone"
    );
    // 08:00 in New York: the 212 number; a 212 number said to be in Los Angeles, a 617 said
    // to be in Chicago, a 415 and a 312 said to be in New York all wait for their other zone.
    run_for("2026-01-07T12:59:30Z", 60).await;
    assert_eq!(
        dialed(&e, c).await,
        vec![
            ("+14155550100".to_owned(), 2),
            ("+12125550100".to_owned(), 13)
        ]
    );
    // 08:00 in Chicago: the 617 and the 312.
    run_for("2026-01-07T14:00:00Z", 30).await;
    // 08:00 in Los Angeles: the 212 and the 415.
    run_for("2026-01-07T16:00:00Z", 30).await;
    let mut calls = dialed(&e, c).await;
    calls.sort();
    assert_eq!(
        calls,
        vec![
            ("+12125550100".to_owned(), 13),
            ("+12125550101".to_owned(), 16),
            ("+13125550104".to_owned(), 14),
            ("+14155550100".to_owned(), 2),
            ("+14155550103".to_owned(), 16),
            ("+16175550102".to_owned(), 14),
        ]
    );
    e.finish().await;
}
