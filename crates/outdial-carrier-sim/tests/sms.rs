//! `TwilioRest::send_sms` against the simulator.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{FROM, Receiver, SimServer, TOKEN, fast_config};
use outdial_carrier::callback::MessageStatusCallback;
use outdial_carrier::{CarrierError, MessagingProvider, SendSmsRequest, signature};

const TO: &str = "+12125550142";
const WAIT: Duration = Duration::from_secs(2);

fn request(status_callback: &str) -> SendSmsRequest {
    SendSmsRequest {
        to: TO.to_owned(),
        from: FROM.to_owned(),
        body: "Your appointment is tomorrow at 10:00. Reply STOP to opt out.".to_owned(),
        status_callback: status_callback.to_owned(),
    }
}

/// Sends one message scripted to `outcome`; returns its parsed callbacks after checking
/// signatures and sids.
async fn scripted_message(outcome: &str) -> Vec<MessageStatusCallback> {
    let sim = SimServer::start(fast_config()).await;
    let mut receiver = Receiver::start().await;
    sim.script(TO, &[outcome]).await;
    let url = format!("{}/webhooks/sms-status?campaign=9", receiver.base_url);
    let accepted = sim.client().send_sms(&request(&url)).await.unwrap();
    assert!(accepted.message_sid.starts_with("SM") && accepted.message_sid.len() == 34);
    assert_eq!(accepted.status, "queued");

    let received = receiver
        .until(WAIT, |cb| {
            MessageStatusCallback::from_params(&cb.params)
                .unwrap()
                .is_final()
        })
        .await;
    let parsed: Vec<_> = received
        .iter()
        .map(|cb| {
            assert_eq!(cb.path_and_query, "/webhooks/sms-status?campaign=9");
            assert!(
                signature::verify(TOKEN, &url, &cb.params, cb.signature.as_deref().unwrap()),
                "{cb:?}"
            );
            assert_eq!((cb.get("To"), cb.get("From")), (Some(TO), Some(FROM)));
            assert_eq!(cb.get("AccountSid"), Some(common::SID));
            MessageStatusCallback::from_params(&cb.params).unwrap()
        })
        .collect();
    assert!(
        parsed
            .iter()
            .all(|cb| cb.message_sid == accepted.message_sid)
    );
    let stats = sim.stats().await;
    assert_eq!((stats.messages_total, stats.calls_total), (1, 0));
    let record = sim
        .calls()
        .await
        .into_iter()
        .find(|c| c.sid == accepted.message_sid)
        .unwrap();
    assert_eq!(
        (record.kind.as_str(), record.outcome.as_str()),
        ("sms", outcome)
    );
    parsed
}

fn statuses(callbacks: &[MessageStatusCallback]) -> Vec<(&str, Option<u32>)> {
    callbacks
        .iter()
        .map(|cb| (cb.message_status.as_str(), cb.error_code))
        .collect()
}

#[tokio::test]
async fn message_is_delivered() {
    let callbacks = scripted_message("delivered").await;
    assert_eq!(
        statuses(&callbacks),
        [("sending", None), ("sent", None), ("delivered", None)]
    );
}

#[tokio::test]
async fn undelivered_message_carries_an_error_code() {
    let callbacks = scripted_message("undelivered").await;
    assert_eq!(
        statuses(&callbacks),
        [
            ("sending", None),
            ("sent", None),
            ("undelivered", Some(30003))
        ]
    );
}

#[tokio::test]
async fn failed_message_carries_an_error_code() {
    let callbacks = scripted_message("failed").await;
    assert_eq!(
        statuses(&callbacks),
        [("sending", None), ("failed", Some(30005))]
    );
}

#[tokio::test]
async fn message_requests_are_validated() {
    let sim = SimServer::start(fast_config()).await;
    let client = sim.client();
    let mut bad_to = request("http://127.0.0.1:9/cb");
    bad_to.to = "555-0100".to_owned();
    let err = client.send_sms(&bad_to).await.unwrap_err();
    assert!(
        matches!(err, CarrierError::InvalidNumber { code: 21211, .. }),
        "{err:?}"
    );

    let mut empty = request("http://127.0.0.1:9/cb");
    empty.body = String::new();
    let err = client.send_sms(&empty).await.unwrap_err();
    assert!(
        matches!(
            err,
            CarrierError::Rejected {
                status: 400,
                code: Some(21602),
                ..
            }
        ),
        "{err:?}"
    );

    let wrong = outdial_carrier::TwilioRest::new(&sim.base_url, common::SID, "nope", WAIT).unwrap();
    let err = wrong
        .send_sms(&request("http://127.0.0.1:9/cb"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CarrierError::Rejected { status: 401, .. }),
        "{err:?}"
    );
}
