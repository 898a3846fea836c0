//! `TwilioRest::originate` against the simulator, end to end over HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{FROM, Receiver, SimServer, TOKEN, fast_config};
use outdial_carrier::callback::CallStatusCallback;
use outdial_carrier::{CarrierError, OriginateRequest, TwilioRest, VoiceProvider, signature};
use outdial_carrier_sim::SimConfig;
use outdial_domain::contact::Disposition;

const TO: &str = "+12125550100";
const WAIT: Duration = Duration::from_secs(2);

fn request(to: &str, status_callback: &str, machine_detection: bool) -> OriginateRequest {
    OriginateRequest {
        to: to.to_owned(),
        from: FROM.to_owned(),
        url: "https://outdial.example/twiml/agent".to_owned(),
        status_callback: status_callback.to_owned(),
        status_events: outdial_carrier::CALL_EVENTS
            .iter()
            .map(|e| (*e).to_owned())
            .collect(),
        machine_detection,
    }
}

fn is_final(received: &common::Received) -> bool {
    CallStatusCallback::from_params(&received.params)
        .unwrap()
        .is_final()
}

/// Originates one call scripted to `outcome` and returns its callbacks up to the final one,
/// after checking what every outcome shares: signatures over the exact URL, sid, sequence.
async fn scripted_call(outcome: &str, machine_detection: bool) -> Vec<common::Received> {
    let sim = SimServer::start(fast_config()).await;
    let mut receiver = Receiver::start().await;
    sim.script(TO, &[outcome]).await;
    // A query string with an escaped space: the signature covers it byte for byte.
    let callback_url = format!(
        "{}/webhooks/call-status?attempt=3&note=a%20b",
        receiver.base_url
    );

    let accepted = sim
        .client()
        .originate(&request(TO, &callback_url, machine_detection))
        .await
        .unwrap();
    assert!(
        accepted.call_sid.starts_with("CA") && accepted.call_sid.len() == 34,
        "{}",
        accepted.call_sid
    );
    assert_eq!(accepted.status, "queued");

    let callbacks = receiver.until(WAIT, is_final).await;
    for (i, cb) in callbacks.iter().enumerate() {
        assert_eq!(
            cb.path_and_query,
            "/webhooks/call-status?attempt=3&note=a%20b"
        );
        let sig = cb.signature.as_deref().unwrap();
        assert!(
            signature::verify(TOKEN, &callback_url, &cb.params, sig),
            "signature of {cb:?}"
        );
        assert!(!signature::verify(
            "other-token",
            &callback_url,
            &cb.params,
            sig
        ));
        assert_eq!(cb.get("CallSid"), Some(accepted.call_sid.as_str()));
        assert_eq!(cb.get("SequenceNumber"), Some(i.to_string().as_str()));
        assert_eq!(cb.get("To"), Some(TO));
        assert_eq!(cb.get("From"), Some(FROM));
        assert_eq!(cb.get("Direction"), Some("outbound-api"));
        assert_eq!(cb.get("ApiVersion"), Some("2010-04-01"));
        assert_eq!(cb.get("AccountSid"), Some(common::SID));
        assert_eq!(cb.get("CallbackSource"), Some("call-progress-events"));
    }
    let record = sim
        .calls()
        .await
        .into_iter()
        .find(|c| c.sid == accepted.call_sid)
        .unwrap();
    assert_eq!(record.outcome, outcome);
    assert_eq!(record.kind, "call");
    callbacks
}

fn statuses(callbacks: &[common::Received]) -> Vec<&str> {
    callbacks
        .iter()
        .map(|c| c.get("CallStatus").unwrap())
        .collect()
}

fn last(callbacks: &[common::Received]) -> CallStatusCallback {
    CallStatusCallback::from_params(&callbacks.last().unwrap().params).unwrap()
}

#[tokio::test]
async fn human_answers_and_talks() {
    let callbacks = scripted_call("human", true).await;
    assert_eq!(
        statuses(&callbacks),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    let fin = last(&callbacks);
    assert_eq!(fin.answered_by.as_deref(), Some("human"));
    assert!(
        (20..=180).contains(&fin.call_duration_s.unwrap()),
        "{fin:?}"
    );
    assert_eq!(fin.sip_response_code, Some(200));
    assert_eq!(fin.disposition(10), Some(Disposition::HumanConnected));
}

#[tokio::test]
async fn human_without_machine_detection_has_no_answered_by() {
    let callbacks = scripted_call("human", false).await;
    let fin = last(&callbacks);
    assert_eq!(fin.answered_by, None);
    assert!(callbacks.iter().all(|c| c.get("AnsweredBy").is_none()));
    assert_eq!(fin.disposition(10), Some(Disposition::HumanConnected));
}

#[tokio::test]
async fn human_hangs_up_quickly() {
    let callbacks = scripted_call("human_hangup", true).await;
    assert_eq!(
        statuses(&callbacks),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    let fin = last(&callbacks);
    assert_eq!(fin.answered_by.as_deref(), Some("human"));
    assert!((1..=8).contains(&fin.call_duration_s.unwrap()), "{fin:?}");
    assert_eq!(fin.disposition(10), Some(Disposition::HumanHangup));
}

#[tokio::test]
async fn machine_is_voicemail() {
    let callbacks = scripted_call("machine", true).await;
    assert_eq!(
        statuses(&callbacks),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    let fin = last(&callbacks);
    assert_eq!(fin.answered_by.as_deref(), Some("machine_end_beep"));
    assert!((15..=40).contains(&fin.call_duration_s.unwrap()), "{fin:?}");
    assert_eq!(fin.disposition(10), Some(Disposition::Voicemail));
}

#[tokio::test]
async fn nobody_answers() {
    let callbacks = scripted_call("no_answer", true).await;
    assert_eq!(statuses(&callbacks), ["initiated", "ringing", "no-answer"]);
    let fin = last(&callbacks);
    assert_eq!(
        (fin.call_duration_s, fin.answered_by.as_deref()),
        (Some(0), None)
    );
    assert_eq!(fin.disposition(10), Some(Disposition::NoAnswer));
}

#[tokio::test]
async fn line_is_busy() {
    let callbacks = scripted_call("busy", true).await;
    assert_eq!(statuses(&callbacks), ["initiated", "busy"]);
    let fin = last(&callbacks);
    assert_eq!(
        (fin.call_duration_s, fin.sip_response_code),
        (Some(0), Some(486))
    );
    assert_eq!(fin.disposition(10), Some(Disposition::Busy));
}

#[tokio::test]
async fn carrier_fails_the_call() {
    let callbacks = scripted_call("failed", true).await;
    assert_eq!(statuses(&callbacks), ["initiated", "failed"]);
    let fin = last(&callbacks);
    assert_eq!(fin.sip_response_code, Some(503));
    assert_eq!(fin.disposition(10), Some(Disposition::Failed));
}

#[tokio::test]
async fn silent_call_never_sends_a_final_callback() {
    let sim = SimServer::start(fast_config()).await;
    let mut receiver = Receiver::start().await;
    let silent_to = "+12125550101";
    sim.script(silent_to, &["silent"]).await;
    sim.script(TO, &["busy"]).await;
    let url = format!("{}/cb", receiver.base_url);
    let client = sim.client();
    let silent = client
        .originate(&request(silent_to, &url, true))
        .await
        .unwrap();
    let busy = client.originate(&request(TO, &url, true)).await.unwrap();

    let mut seen = receiver
        .until(WAIT, |cb| {
            cb.get("CallSid") == Some(busy.call_sid.as_str()) && is_final(cb)
        })
        .await;
    // The busy call has ended; everything the silent call will ever send has long been sent
    // (its ringing comes without delay). Give it a generous window anyway.
    while let Some(cb) = receiver.next(Duration::from_millis(500)).await {
        seen.push(cb);
    }
    let silent_statuses: Vec<_> = seen
        .iter()
        .filter(|cb| cb.get("CallSid") == Some(silent.call_sid.as_str()))
        .map(|cb| cb.get("CallStatus").unwrap())
        .collect();
    assert_eq!(silent_statuses, ["initiated", "ringing"]);

    let calls = sim.calls().await;
    let record = |sid: &str| calls.iter().find(|c| c.sid == sid).unwrap().clone();
    assert_eq!(record(&silent.call_sid).ended_ms, None);
    assert_eq!(record(&silent.call_sid).callbacks_sent, 2);
    assert!(record(&busy.call_sid).ended_ms.is_some());
    let stats = sim.stats().await;
    assert_eq!((stats.calls_total, stats.calls_active), (2, 0));
    assert_eq!(stats.by_outcome.get("silent"), Some(&1));
    assert_eq!(stats.by_outcome.get("busy"), Some(&1));
    sim.shutdown().await;
}

#[tokio::test]
async fn scripts_are_consumed_in_order_then_the_mix_applies() {
    let cfg = SimConfig {
        instant: true,
        mix: [("busy".to_owned(), 1.0)].into(),
        ..fast_config()
    };
    let sim = SimServer::start(cfg).await;
    let mut receiver = Receiver::start().await;
    sim.script(TO, &["no_answer", "failed"]).await;
    let url = format!("{}/cb", receiver.base_url);
    let mut finals = Vec::new();
    for _ in 0..3 {
        sim.client()
            .originate(&request(TO, &url, false))
            .await
            .unwrap();
        let callbacks = receiver.until(WAIT, is_final).await;
        finals.push(last(&callbacks).call_status);
    }
    assert_eq!(finals, ["no-answer", "failed", "busy"]);

    let bad = reqwest::Client::new()
        .post(format!("{}/sim/script", sim.base_url))
        .json(&serde_json::json!({ TO: ["voicemail"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn instant_mode_runs_many_calls_at_once() {
    let cfg = SimConfig {
        instant: true,
        mix: [("human".to_owned(), 1.0)].into(),
        ..fast_config()
    };
    let sim = SimServer::start(cfg).await;
    let mut receiver = Receiver::start().await;
    let url = format!("{}/cb", receiver.base_url);
    let client = sim.client();
    let calls = (0..20).map(|i| {
        let client = client.clone();
        let req = request(&format!("+1212555{:04}", 200 + i), &url, true);
        async move { client.originate(&req).await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let mut finals = 0;
    while finals < 20 {
        let cb = receiver.next(WAIT).await.expect("callback");
        finals += usize::from(is_final(&cb));
    }
    let stats = sim.stats().await;
    assert_eq!(stats.calls_total, 20);
    assert!(stats.calls_peak >= 1);
    assert_eq!(stats.callbacks_sent, 80);
    assert_eq!(stats.callbacks_failed, 0);
}

#[tokio::test]
async fn failed_callbacks_are_retried() {
    let sim = SimServer::start(fast_config()).await;
    // The first two POSTs get 503: `initiated` is delivered on its third try (200 + 400 ms).
    let mut receiver = Receiver::failing(2, StatusCode::SERVICE_UNAVAILABLE).await;
    sim.script(TO, &["busy"]).await;
    let url = format!("{}/cb", receiver.base_url);
    sim.client()
        .originate(&request(TO, &url, false))
        .await
        .unwrap();
    let callbacks = receiver.until(WAIT, is_final).await;
    assert_eq!(statuses(&callbacks), ["initiated", "busy"]);
    let stats = sim.stats().await;
    assert_eq!((stats.callbacks_sent, stats.callbacks_failed), (2, 0));
}

#[tokio::test]
async fn refused_callbacks_are_not_retried() {
    let sim = SimServer::start(fast_config()).await;
    let mut receiver = Receiver::failing(usize::MAX, StatusCode::FORBIDDEN).await;
    sim.script(TO, &["busy"]).await;
    let url = format!("{}/cb", receiver.base_url);
    let call = sim
        .client()
        .originate(&request(TO, &url, false))
        .await
        .unwrap();
    assert!(receiver.next(Duration::from_millis(300)).await.is_none());
    let record = sim
        .calls()
        .await
        .into_iter()
        .find(|c| c.sid == call.call_sid)
        .unwrap();
    assert!(record.ended_ms.is_some());
    assert_eq!(record.callbacks_sent, 0);
    assert_eq!(
        receiver.hits.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one POST per callback"
    );
    assert_eq!(sim.stats().await.callbacks_failed, 2);
}

#[tokio::test]
async fn invalid_numbers_are_reported_per_number() {
    let cfg = SimConfig {
        unallocated: ["+12125550199".to_owned()].into(),
        ..fast_config()
    };
    let sim = SimServer::start(cfg).await;
    let client = sim.client();
    let cb = "http://127.0.0.1:9/cb";
    for to in [
        "+1212555010",
        "2125550100",
        "+1 212 555 0100",
        "+442071838750",
        "banana",
        "",
    ] {
        let err = client.originate(&request(to, cb, false)).await.unwrap_err();
        assert!(
            matches!(err, CarrierError::InvalidNumber { code: 21211, .. }),
            "{to:?}: {err:?}"
        );
    }
    let err = client
        .originate(&request("+12125550199", cb, false))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CarrierError::InvalidNumber { code: 21217, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());

    // A bad caller ID is our configuration, not the contact's number.
    let mut bad_from = request(TO, cb, false);
    bad_from.from = "+1310555012".to_owned();
    let err = client.originate(&bad_from).await.unwrap_err();
    assert!(
        matches!(
            err,
            CarrierError::Rejected {
                status: 400,
                code: Some(21212),
                ..
            }
        ),
        "{err:?}"
    );

    let mut no_url = request(TO, cb, false);
    no_url.url = String::new();
    let err = client.originate(&no_url).await.unwrap_err();
    assert!(
        matches!(
            err,
            CarrierError::Rejected {
                status: 400,
                code: Some(21205),
                ..
            }
        ),
        "{err:?}"
    );

    assert_eq!(sim.stats().await.calls_total, 0);
}

#[tokio::test]
async fn bad_credentials_are_rejected() {
    let sim = SimServer::start(fast_config()).await;
    let req = request(TO, "http://127.0.0.1:9/cb", false);
    let wrong_token = TwilioRest::new(&sim.base_url, common::SID, "wrong", WAIT).unwrap();
    let err = wrong_token.originate(&req).await.unwrap_err();
    assert!(
        matches!(
            err,
            CarrierError::Rejected {
                status: 401,
                code: Some(20003),
                ..
            }
        ),
        "{err:?}"
    );
    let wrong_account = TwilioRest::new(
        &sim.base_url,
        "AC11111111111111111111111111111111",
        TOKEN,
        WAIT,
    )
    .unwrap();
    let err = wrong_account.originate(&req).await.unwrap_err();
    assert!(
        matches!(err, CarrierError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn unreachable_carrier_is_transient() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = TwilioRest::new(&closed, common::SID, TOKEN, WAIT).unwrap();
    let err = client
        .originate(&request(TO, "http://127.0.0.1:9/cb", false))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CarrierError::Transient { status: None, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn overloaded_carrier_is_transient() {
    // A carrier front end answering 503 / 429 (a real HTTP server, not a mock of the client).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Calls.json",
            axum::routing::post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable") }),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            axum::routing::post(|| async {
                let body = serde_json::json!({"code": 20429, "message": "Too Many Requests", "status": 429});
                (StatusCode::TOO_MANY_REQUESTS, axum::Json(body))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = TwilioRest::new(&base, common::SID, TOKEN, WAIT).unwrap();
    let err = client
        .originate(&request(TO, "http://127.0.0.1:9/cb", false))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CarrierError::Transient {
            status: Some(503),
            message: "upstream unavailable".to_owned()
        }
    );
    let sms = outdial_carrier::SendSmsRequest {
        to: TO.to_owned(),
        from: FROM.to_owned(),
        body: "hi".to_owned(),
        status_callback: "http://127.0.0.1:9/cb".to_owned(),
    };
    let err = outdial_carrier::MessagingProvider::send_sms(&client, &sms)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CarrierError::Transient {
            status: Some(429),
            message: "Too Many Requests".to_owned()
        }
    );
}
