//! The HTTP API (product §10): tokens, scopes, organization scoping, error codes, campaign
//! control, contact upload, concurrency settings and direct calls.

use outdial_clock::Clock;
use outdial_domain::campaign::CampaignStatus;
use outdial_e2e::InProcess;
use serde_json::{Value, json};

async fn call(
    e: &InProcess,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = e.http.request(method, format!("{}{path}", e.api_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_are_org_scoped_and_errors_have_stable_codes() {
    use reqwest::Method;
    let e = InProcess::start(|_, _| {}).await;
    let acme = e.org("acme", 10, &["+12125550999"]).await;
    let other = e.org("other", 10, &[]).await;
    let manage = e.token(acme, &["campaigns:manage", "contacts:write"]).await;
    let read_only = e.token(acme, &["campaigns:read"]).await;
    let stranger = e.token(other, &["campaigns:manage"]).await;

    let (s, b) = call(
        &e,
        Method::POST,
        "/api/campaigns",
        None,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (s, _) = call(
        &e,
        Method::POST,
        "/api/campaigns",
        Some("odt_forged"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, 401);
    let (s, b) = call(
        &e,
        Method::POST,
        "/api/campaigns",
        Some(&read_only),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_str()), (403, Some("forbidden")));

    for bad in [
        json!({"name": "x", "calls_per_second": 0}),
        json!({"name": "x", "colour": "blue"}),
        json!({"name": "x", "window": {"start": "9am", "end": "17:00"}}),
    ] {
        let (s, b) = call(
            &e,
            Method::POST,
            "/api/campaigns",
            Some(&manage),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("validation_failed")),
            "{bad}: {b}"
        );
    }
    let raw = e
        .http
        .post(format!("{}/api/campaigns", e.api_url))
        .bearer_auth(&manage)
        .body("{not json")
        .send()
        .await
        .expect("req");
    assert_eq!(raw.status(), 400);

    let spec = json!({"name": "spring", "calls_per_second": 2, "window": {"start": "09:00", "end": "23:00", "days": ["mon", "tue", "wed", "thu", "fri"]}});
    let (s, c) = call(
        &e,
        Method::POST,
        "/api/campaigns",
        Some(&manage),
        Some(spec),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(
        c["window"]["end"], "21:00:00",
        "clipped to the legal window"
    );
    let id = c["id"].as_i64().expect("id");

    let upload = e
        .http
        .post(format!(
            "{}/api/campaigns/{id}/contacts?filename=list.csv",
            e.api_url
        ))
        .bearer_auth(&manage)
        .body("phone,name\n(212) 555-0143,Ann\nnot a number,Bob\n+1 212 555 0143,Ann again\n")
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 200);
    let report: Value = upload.json().await.expect("json");
    assert_eq!(
        (
            report["imported"].as_i64(),
            report["malformed"].as_i64(),
            report["duplicates"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(report["rejections"][0]["row"], 2);
    let no_phone = e
        .http
        .post(format!("{}/api/campaigns/{id}/contacts", e.api_url))
        .bearer_auth(&manage)
        .body("name\nAnn\n")
        .send()
        .await
        .expect("upload");
    assert_eq!(no_phone.status(), 422);

    // Another organization's token sees nothing.
    for (m, path) in [
        (Method::GET, format!("/api/campaigns/{id}")),
        (Method::POST, format!("/api/campaigns/{id}/start")),
        (Method::GET, format!("/api/campaigns/{id}/stats")),
    ] {
        let (s, b) = call(&e, m, &path, Some(&stranger), None).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }

    let (s, b) = call(
        &e,
        Method::POST,
        &format!("/api/campaigns/{id}/start"),
        Some(&manage),
        None,
    )
    .await;
    assert_eq!(
        (s, b["campaign"]["status"].as_str()),
        (200, Some("dialing"))
    );
    let (s, b) = call(
        &e,
        Method::POST,
        &format!("/api/campaigns/{id}/resume"),
        Some(&manage),
        None,
    )
    .await;
    assert_eq!(
        (
            s,
            b["error"]["code"].as_str(),
            b["error"]["current_status"].as_str()
        ),
        (409, Some("illegal_transition"), Some("dialing"))
    );
    let (s, _) = call(
        &e,
        Method::POST,
        &format!("/api/campaigns/{id}/pause"),
        Some(&manage),
        Some(json!({"reason": "lunch"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = call(
        &e,
        Method::GET,
        &format!("/api/campaigns/{id}/transitions"),
        Some(&read_only),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["transitions"][1]["reason"], "lunch");
    assert!(
        b["transitions"][1]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("api:token:"))
    );
    let (s, b) = call(
        &e,
        Method::GET,
        &format!("/api/campaigns/{id}/stats"),
        Some(&read_only),
        None,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("paused")));
    let (s, _) = call(
        &e,
        Method::POST,
        &format!("/api/campaigns/{id}/cancel"),
        Some(&manage),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let campaign = e
        .svc
        .store
        .campaign(outdial_domain::CampaignId(id), None)
        .await
        .expect("campaign");
    assert_eq!(campaign.status, CampaignStatus::Cancelled);
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_settings_follow_the_seed_scopes_and_bounds() {
    use reqwest::Method;
    let e = InProcess::start(|_, _| {}).await;
    let org = e.org("acme", 10, &[]).await;
    let reader = e.token(org, &["concurrency:read"]).await;
    let manager = e.token(org, &["concurrency:manage"]).await;
    let campaigns_read = e.token(org, &["campaigns:read"]).await;
    let unrelated = e.token(org, &["calls:write"]).await;

    let (s, b) = call(
        &e,
        Method::GET,
        "/campaign/concurrency-settings",
        Some(&campaigns_read),
        None,
    )
    .await;
    assert_eq!(
        (s, b["concurrency_limit"].as_i64()),
        (200, Some(10)),
        "default 10"
    );
    let (s, _) = call(
        &e,
        Method::GET,
        "/campaign/concurrency-settings",
        Some(&unrelated),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(
        &e,
        Method::PUT,
        "/campaign/concurrency-settings",
        Some(&reader),
        Some(json!({"concurrency_limit": 20})),
    )
    .await;
    assert_eq!(s, 403, "read scope cannot update");
    for bad in [0, 10_001, -5] {
        let (s, b) = call(
            &e,
            Method::PUT,
            "/campaign/concurrency-settings",
            Some(&manager),
            Some(json!({"concurrency_limit": bad})),
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("validation_failed")),
            "{bad}"
        );
    }
    let (s, b) = call(
        &e,
        Method::PUT,
        "/campaign/concurrency-settings",
        Some(&manager),
        Some(json!({"concurrency_limit": 10_000})),
    )
    .await;
    assert_eq!((s, b["concurrency_limit"].as_i64()), (200, Some(10_000)));
    let (s, b) = call(
        &e,
        Method::GET,
        "/campaign/concurrency-settings",
        Some(&reader),
        None,
    )
    .await;
    assert_eq!((s, b["concurrency_limit"].as_i64()), (200, Some(10_000)));
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_call_bypasses_calling_windows_and_uses_the_api_pool() {
    use reqwest::Method;
    // 07:00 UTC: 03:00 in New York, 00:00 in Los Angeles — every US window is closed.
    let e = InProcess::start_at("2026-07-01T07:00:00Z".parse().expect("time"), |_, sim| {
        sim.mix = [("human".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let org = e.org("acme", 10, &["+12125550999"]).await;
    let token = e.token(org, &["calls:write"]).await;
    let (s, _) = call(
        &e,
        Method::POST,
        "/api/calls",
        Some(&token),
        Some(json!({"phone_numbers": ["nope"]})),
    )
    .await;
    assert_eq!(s, 422);
    let (s, contact) = call(
        &e,
        Method::POST,
        "/api/calls",
        Some(&token),
        Some(json!({"phone_numbers": ["(212) 555-0143"], "name": "Ann"})),
    )
    .await;
    assert_eq!(s, 202, "{contact}");
    assert_eq!(contact["sip_pool"], "api");
    e.quiesce().await;
    let id = outdial_domain::ContactId(contact["id"].as_i64().expect("id"));
    let done = e.svc.store.contact(id).await.expect("contact");
    assert_eq!(
        (done.status.as_str(), done.disposition.map(|x| x.as_str())),
        ("completed", Some("human_connected"))
    );
    let attempts = e.svc.store.contact_attempts(id).await.expect("attempts");
    assert_eq!(
        (attempts.len(), attempts[0].channel_pool.as_str()),
        (1, "api")
    );
    assert_eq!(
        e.svc
            .channels
            .status("api", e.clock.now_ms())
            .await
            .expect("pool")
            .count,
        0,
        "channel released"
    );
    e.finish().await;
}
