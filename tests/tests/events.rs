//! Live events (product §9): the SSE relay delivers a campaign's events in publication order,
//! only to its own organization, with keep-alives.

use std::time::Duration;

use outdial_clock::Clock;
use outdial_control::spec::CampaignSpec;
use outdial_control::transition;
use outdial_domain::campaign::CampaignCommand;
use outdial_e2e::InProcess;
use outdial_fleet::events::campaign_channel;
use serde_json::Value;

/// One parsed SSE block: `(event, data)`, or `None` for a comment (keep-alive).
fn parse_blocks(buf: &mut String) -> Vec<Option<(String, String)>> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        let mut event = None;
        let mut data = None;
        let mut comment = false;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data = Some(v.trim_start().to_owned());
            } else if line.starts_with(':') {
                comment = true;
            }
        }
        match (event, data) {
            (Some(e), Some(d)) => out.push(Some((e, d))),
            _ if comment => out.push(None),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gets_its_campaigns_events_in_order_and_no_other_orgs() {
    let e = InProcess::start(|cfg, sim| {
        cfg.api.sse_keepalive_ms = 300;
        sim.mix = [("human".to_owned(), 1.0)].into_iter().collect();
    })
    .await;
    let org = e.org("acme", 10, &["+12125550100"]).await;
    let other = e.org("other", 10, &["+13125550100"]).await;
    let token = e.token(org, &["campaigns:read"]).await;
    let spec = || CampaignSpec {
        name: "c".into(),
        calls_per_second: Some(5.0),
        ..CampaignSpec::default()
    };
    let c = e.campaign(org, spec()).await;
    e.import(org, c, "phone\n+12125551000\n+12125551001\n+12125551002\n")
        .await;
    let theirs = e.campaign(other, spec()).await;
    e.import(other, theirs, "phone\n+13125551000\n").await;

    // Another organization's channel is not found for this token; a bad channel is 400.
    let url = |q: &str| format!("{}/api/events?channels={q}", e.api_url);
    let r = e
        .http
        .get(url(&format!("campaign:{theirs}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 404);
    let r = e
        .http
        .get(url("queue:1"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 400);

    // A raw Redis subscriber on the same channel is the reference for order and content.
    let channel = campaign_channel(e.svc.events.prefix(), c);
    let mut raw = e.redis.client.get_async_pubsub().await.expect("pubsub");
    raw.subscribe(&channel).await.expect("subscribe");
    let mut sse = e
        .http
        .get(url(&format!("campaign:{c}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status().as_u16(), 200);
    assert!(
        sse.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/event-stream")
    );
    // The stream is subscribed once the first keep-alive arrives.
    let mut buf = String::new();
    let mut got: Vec<(String, String)> = Vec::new();
    let mut keepalives = 0;
    while keepalives == 0 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), sse.chunk())
            .await
            .expect("keep-alive within 5 s")
            .expect("chunk")
            .expect("open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        keepalives += parse_blocks(&mut buf)
            .iter()
            .filter(|b| b.is_none())
            .count();
    }

    // A forged event of another organization on this channel must not be relayed.
    let mut conn = e.redis.pool.get().await.expect("redis");
    let forged = serde_json::json!({"type": "campaign.call.initiated", "org_id": other.0, "campaign_id": c.0, "at": "2026-07-01T18:00:00Z", "data": {}});
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(forged.to_string())
        .query_async(&mut *conn)
        .await
        .expect("publish");

    // Run both campaigns to the end.
    for id in [c, theirs] {
        let owner = if id == c { org } else { other };
        transition::apply(
            &e.svc,
            id,
            Some(owner),
            CampaignCommand::Start,
            "test",
            None,
        )
        .await
        .expect("start");
    }
    e.run_until_completed(&[c, theirs], 2_000, 200).await;
    // Let the throttled stats events out; then an end marker of this organization, which
    // Redis delivers after everything published before it, to both subscribers.
    e.advance_to(e.clock.now_ms() + 5_000).await;
    let end = serde_json::json!({"type": "test.end", "org_id": org.0, "campaign_id": c.0, "at": "2026-07-01T18:00:00Z", "data": {}});
    let end = end.to_string();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(&end)
        .query_async(&mut *conn)
        .await
        .expect("publish");
    let mut reference: Vec<String> = Vec::new();
    {
        use futures_util::StreamExt;
        let mut messages = raw.on_message();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), messages.next())
                .await
                .expect("the end marker within 5 s")
                .expect("subscribed");
            let payload: String = m.get_payload().expect("payload");
            if payload == end {
                break;
            }
            reference.push(payload);
        }
    }
    let expected: Vec<String> = reference
        .iter()
        .filter(|p| serde_json::from_str::<Value>(p).expect("json")["org_id"] == org.0)
        .cloned()
        .collect();
    assert_eq!(
        reference.len(),
        expected.len() + 1,
        "exactly the forged event is another org's"
    );
    while got.last().is_none_or(|(t, _)| t != "test.end") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), sse.chunk())
            .await
            .expect("events within 5 s")
            .expect("chunk")
            .expect("open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        for block in parse_blocks(&mut buf) {
            match block {
                Some(ev) => got.push(ev),
                None => keepalives += 1,
            }
        }
    }
    got.pop();
    let data: Vec<String> = got.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(
        data, expected,
        "SSE relays every event of the org, in order"
    );
    for (event, d) in &got {
        let v: Value = serde_json::from_str(d).expect("json");
        assert_eq!(v["type"], Value::String(event.clone()));
        assert_eq!(v["org_id"], org.0);
        assert_eq!(v["campaign_id"], c.0);
    }
    let types: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types.first(), Some(&"campaign.status.changed"));
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "campaign.call.initiated")
            .count(),
        3
    );
    assert!(types.contains(&"campaign.stats.updated"));
    assert!(keepalives >= 1);
    e.finish().await;
}
