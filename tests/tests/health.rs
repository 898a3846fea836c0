//! Caller-ID health and lifecycle on the real store (product §7): hand-computed scores for
//! crafted call histories, cooldown → warming → active with the ramp, burn, the minimum
//! sample, spam flags and the health endpoints.

use chrono::{DateTime, Duration, Utc};
use outdial_clock::Clock;
use outdial_control::spec::CampaignSpec;
use outdial_control::transition;
use outdial_domain::DidId;
use outdial_domain::campaign::{CampaignCommand, CampaignStatus};
use outdial_domain::did::{DidState, warming_allowance};
use outdial_e2e::InProcess;
use outdial_health::HealthScorer;
use serde_json::{Value, json};

/// Writes `n` health events of `did` with `disposition` and `duration_s`, at `at`.
async fn history(
    e: &InProcess,
    did: DidId,
    disposition: &str,
    duration_s: i32,
    n: usize,
    at: DateTime<Utc>,
) {
    for _ in 0..n {
        sqlx::query(
            "INSERT INTO did_health_events (did_id, disposition, duration_s, spam_flagged, at) VALUES ($1, $2, $3, false, $4)",
        )
        .bind(did.0)
        .bind(disposition)
        .bind(duration_s)
        .bind(at)
        .execute(&e.db.pool)
        .await
        .expect("event");
    }
}

async fn did_id(e: &InProcess, e164: &str) -> DidId {
    e.svc
        .store
        .dids(None)
        .await
        .expect("dids")
        .into_iter()
        .find(|d| d.e164 == e164)
        .expect("did")
        .id
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn get(e: &InProcess, token: &str, path: &str) -> (u16, Value) {
    let r = e
        .http
        .get(format!("{}{path}", e.api_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_did_cools_down_warms_up_on_a_ramp_and_returns_and_a_worse_one_burns() {
    let e = InProcess::start(|_, _| {}).await;
    let org = e
        .org(
            "acme",
            10,
            &["+12125550100", "+12125550101", "+12125550102"],
        )
        .await;
    let token = e.token(org, &["dids:read"]).await;
    let (a, b, c) = (
        did_id(&e, "+12125550100").await,
        did_id(&e, "+12125550101").await,
        did_id(&e, "+12125550102").await,
    );
    let scorer = HealthScorer::new(e.svc.clone());
    let t0 = e.clock.now();
    let before = t0 - Duration::minutes(1);

    // A: 4 humans of 30 s and 6 no-answers. answer 4/10 = 0.4, duration 30/60 = 0.5,
    // human 4/4 = 1, no-answer trend 1 − 6/10 = 0.4, spam clean 1:
    // 0.3·0.4 + 0.25·0.5 + 0.2·1 + 0.15·0.4 + 0.1·1 = 0.605 → cooldown (0.5 ≤ s < 0.7).
    history(&e, a, "human_connected", 30, 4, before).await;
    history(&e, a, "no_answer", 0, 6, before).await;
    let s = scorer.rescore(a).await.expect("rescore");
    assert!(close(s.score, 0.605), "{}", s.score);
    assert_eq!(s.state, DidState::Cooling);
    let did_a = e.svc.store.did(a, None).await.expect("a");
    assert_eq!(did_a.cooldown_until, Some(t0 + Duration::hours(2)));
    let comps = did_a.health_components.clone().expect("components");
    assert_eq!(
        comps,
        json!({"answer_rate": 0.4, "duration": 0.5, "human_engagement": 1.0, "no_answer_trend": 0.4, "spam_clean": 1.0})
    );

    // B: 10 no-answers: 0.3·0 + 0.25·0 + 0.2·0 + 0.15·0 + 0.1·1 = 0.1 → burned.
    history(&e, b, "no_answer", 0, 10, before).await;
    let s = scorer.rescore(b).await.expect("rescore");
    assert!(close(s.score, 0.1), "{}", s.score);
    assert_eq!(s.state, DidState::Burned);

    // C: a fresh DID with one bad call is not judged (minimum sample 10): it stays active
    // and usable although its raw score is 0.1.
    history(&e, c, "no_answer", 0, 1, before).await;
    let s = scorer.rescore(c).await.expect("rescore");
    assert!(close(s.score, 0.1), "{}", s.score);
    assert_eq!(s.state, DidState::Active);

    // The endpoints show it: A cooling until t0 + 2 h, one DID usable.
    let (code, health) = get(&e, &token, "/dids/health").await;
    assert_eq!(code, 200, "{health}");
    let dids = health["dids"].as_array().expect("dids");
    assert_eq!(dids.len(), 3);
    let row_a = dids.iter().find(|d| d["id"] == json!(a)).expect("a");
    assert_eq!(row_a["state"], "cooling");
    assert_eq!(row_a["calls_in_window"], 10);
    let (code, report) = get(&e, &token, "/dids/health/report").await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["usable_now"], 1);
    assert_eq!(report["by_state"]["burned"], 1);

    // Cooldown is 2 h: still cooling just before, warming after the next lifecycle run.
    e.advance_to((t0 + Duration::minutes(119)).timestamp_millis())
        .await;
    assert_eq!(
        e.svc.store.did(a, None).await.expect("a").state,
        DidState::Cooling
    );
    e.advance_to((t0 + Duration::minutes(121)).timestamp_millis())
        .await;
    let warm = e.svc.store.did(a, None).await.expect("a");
    assert_eq!(warm.state, DidState::Warming);
    let warming_since = warm.scored_since.expect("scoring restarts");
    let until = warm.warming_until.expect("warming end");
    assert_eq!(until, warming_since + Duration::hours(1));
    // Scored only on calls since the cooldown ended: the old history no longer counts.
    let s = scorer.rescore(a).await.expect("rescore");
    assert!(close(s.score, 1.0));
    assert_eq!(s.state, DidState::Warming);
    // The ramp: one call at first, rising linearly to 20 at the end of warming.
    let lifecycle = e.svc.config.health.lifecycle();
    assert_eq!(warming_allowance(until, warming_since, &lifecycle), 1);
    assert_eq!(
        warming_allowance(until, warming_since + Duration::minutes(30), &lifecycle),
        10
    );
    assert_eq!(warming_allowance(until, until, &lifecycle), 20);
    // One call placed from it (the dialer's attempt insert counts it: store tests).
    sqlx::query("UPDATE dids SET warming_calls = 1 WHERE id = $1")
        .bind(a.0)
        .execute(&e.db.pool)
        .await
        .expect("called");
    let warm = e.svc.store.did(a, None).await.expect("a");
    assert_eq!(warm.warming_calls, 1);
    let rule = e.svc.config.caller_id_rule();
    assert!(
        !warm.candidate(e.clock.now(), &rule).within_ramp,
        "one call used the whole allowance at the start of warming"
    );
    assert!(
        warm.candidate(warming_since + Duration::minutes(30), &rule)
            .within_ramp
    );
    // Back to active once warming ends; B stays burned for good.
    e.advance_to((until + Duration::minutes(1)).timestamp_millis())
        .await;
    assert_eq!(
        e.svc.store.did(a, None).await.expect("a").state,
        DidState::Active
    );
    e.advance_to((until + Duration::hours(5)).timestamp_millis())
        .await;
    assert_eq!(
        e.svc.store.did(b, None).await.expect("b").state,
        DidState::Burned
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spam_flag_feeds_the_spam_clean_component_and_is_org_scoped() {
    let e = InProcess::start(|_, sim| {
        sim.mix = [("human".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let org = e.org("acme", 10, &["+12125550100"]).await;
    let other = e.org("other", 10, &["+13125550100"]).await;
    let token = e.token(org, &["dids:manage"]).await;
    let foreign = e.token(other, &["dids:manage"]).await;
    let spec = CampaignSpec {
        name: "c".into(),
        ..CampaignSpec::default()
    };
    let c = e.campaign(org, spec).await;
    e.import(org, c, "phone\n+12125551000\n").await;
    transition::apply(&e.svc, c, Some(org), CampaignCommand::Start, "test", None)
        .await
        .expect("start");
    let store = e.svc.store.clone();
    e.run_until(2_000, 100, || {
        let s = store.clone();
        async move { s.campaign(c, None).await.expect("c").status == CampaignStatus::Completed }
    })
    .await;
    let attempt = e.svc.store.campaign_attempts(c).await.expect("a").remove(0);
    let did = attempt.did_id.expect("did");
    let sid = attempt.provider_call_sid.clone().expect("sid");
    let post = |token: String, body: Value| {
        let url = format!("{}/dids/{}/spam-flags", e.api_url, did.0);
        let http = e.http.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("post");
            let code = r.status().as_u16();
            (code, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Another organization cannot see or flag this DID.
    let (code, body) = post(foreign.clone(), json!({ "call_sid": sid })).await;
    assert_eq!(code, 404, "{body}");
    // Exactly one of attempt_id / call_sid.
    let (code, body) = post(token.clone(), json!({})).await;
    assert_eq!(code, 422, "{body}");
    let (code, body) = post(
        token.clone(),
        json!({ "call_sid": sid, "note": "customer complaint" }),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["attempt_id"], json!(attempt.id));
    let (code, body) = post(token.clone(), json!({ "attempt_id": attempt.id })).await;
    assert_eq!(code, 200, "flagging twice changes nothing: {body}");
    e.quiesce().await;
    // One call, flagged: spam clean = 1 − 1/1 = 0 (the other components depend on the
    // simulated talk time, so the component itself is checked).
    let d = e.svc.store.did(did, None).await.expect("did");
    let comps = d.health_components.expect("components");
    assert_eq!(comps["spam_clean"], json!(0.0), "{comps}");
    assert_eq!(d.scored_calls, 1);
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_carrier_reports_as_spam_counts_against_its_did() {
    let e = InProcess::start(|_, sim| {
        sim.mix = [("human".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let org = e.org("acme", 10, &["+12125550100"]).await;
    e.script("+12125551000", &["spam_reported"]).await;
    let spec = CampaignSpec {
        name: "c".into(),
        ..CampaignSpec::default()
    };
    let c = e
        .started_campaign(org, spec, "phone\n+12125551000\n+12125551001\n")
        .await;
    e.run_until_completed(&[c], 2_000, 100).await;
    // Past the re-score debounce.
    e.advance_to(e.clock.now_ms() + 5_000).await;
    let attempts = e.svc.store.campaign_attempts(c).await.expect("attempts");
    let flagged: Vec<&str> = attempts
        .iter()
        .filter(|a| a.spam_flagged)
        .map(|a| a.to_number.as_str())
        .collect();
    assert_eq!(flagged, ["+12125551000"]);
    let did = attempts[0].did_id.expect("did");
    let d = e.svc.store.did(did, None).await.expect("did");
    assert_eq!(d.scored_calls, 2);
    // Two calls, one flagged: spam clean = 1 − 1/2.
    assert_eq!(
        d.health_components.expect("components")["spam_clean"],
        json!(0.5)
    );
    e.finish().await;
}
