//! The fleet rebuilds what Redis lost from Postgres (product §3 "The control loop"), in
//! process on a manual clock: the dialer's keeper notices the loss and reconciles at once.

use std::sync::Arc;

use outdial_clock::Clock;
use outdial_control::spec::CampaignSpec;
use outdial_dialer::keeper::{Keeper, Kept};
use outdial_domain::CampaignId;
use outdial_e2e::InProcess;
use outdial_fleet::jobs::DialerJob;

/// When job `id` is due (ms) on the queue whose scheduled ZSET is `key`, if it is scheduled.
async fn due(e: &InProcess, key: &str, id: &str) -> Option<i64> {
    let mut conn = e.redis.pool.get().await.expect("redis");
    let due: Option<i64> = redis::cmd("ZSCORE")
        .arg(key)
        .arg(id)
        .query_async(&mut *conn)
        .await
        .expect("ZSCORE");
    due
}

async fn scheduled(e: &InProcess, key: &str, id: &str) -> bool {
    due(e, key, id).await.is_some()
}

/// Deletes every key of this test's prefix, as a `FLUSHALL` or a restart without persistence
/// would.
async fn lose_all_redis_data(e: &InProcess) {
    let keys = e.redis.keys().await;
    assert!(!keys.is_empty(), "there was something to lose");
    let mut conn = e.redis.pool.get().await.expect("redis");
    let _: i64 = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut *conn)
        .await
        .expect("DEL");
}

async fn open_attempt_ids(e: &InProcess) -> Vec<i64> {
    let open = e.svc.store.open_attempts(100).await.expect("open attempts");
    open.into_iter().map(|(id, _, _)| id.0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_its_data_is_rebuilt_from_postgres_at_once() {
    // Status callbacks go to an address nobody serves: the calls stay open, like silent
    // calls whose webhooks have not come yet, held only by their timeout jobs.
    let nowhere = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let e = InProcess::start(|cfg, _| cfg.api.public_url = nowhere).await;
    let org = e.org("acme", 20, &["+12125550999"]).await;
    let spec = CampaignSpec {
        name: "c".into(),
        calls_per_second: Some(10.0),
        ..CampaignSpec::default()
    };
    let csv = "phone\n+12125551001\n+12125551002\n+12125551003\n";
    let c: CampaignId = e.started_campaign(org, spec, csv).await;
    e.run_until(100, 200, || async { open_attempt_ids(&e).await.len() == 3 })
        .await;
    let open = open_attempt_ids(&e).await;

    let mut keeper = Keeper::new(Arc::clone(&e.dialer));
    assert_eq!(
        keeper.step().await.expect("step"),
        Kept::Reconciled,
        "no marker yet"
    );
    assert_eq!(keeper.step().await.expect("step"), Kept::Intact);

    lose_all_redis_data(&e).await;
    let dialer_keys = e.svc.dialer_queue.keys().scheduled.clone();
    let control_keys = e.svc.dispatch_queue.keys().scheduled.clone();
    assert!(!scheduled(&e, &control_keys, "dispatch").await);
    assert_eq!(keeper.step().await.expect("step"), Kept::Reconciled);
    // The channels of the three live calls are taken again before dispatch can run.
    assert_eq!(
        e.svc
            .channels
            .holders("campaign")
            .await
            .expect("holders")
            .len(),
        3
    );
    for id in ["dispatch", "maintenance", "did-lifecycle"] {
        assert!(scheduled(&e, &control_keys, id).await, "{id} re-created");
    }
    assert_eq!(keeper.step().await.expect("step"), Kept::Intact);

    // Maintenance ran at once: every open attempt has its timeout job, the campaign its tick.
    e.quiesce().await;
    for attempt in &open {
        let id = DialerJob::CallTimeout {
            attempt_id: outdial_domain::AttemptId(*attempt),
        }
        .id();
        assert!(scheduled(&e, &dialer_keys, &id).await, "{id} restored");
    }
    assert!(scheduled(&e, &dialer_keys, &format!("tick:{c}")).await);

    // Another keeper re-created the marker after a loss this one did not see (a failover
    // that lost the last writes, say): a changed marker is a loss too, and maintenance,
    // still scheduled an interval ahead, runs now.
    let now = e.clock.now_ms();
    assert!(due(&e, &control_keys, "maintenance").await > Some(now));
    let mut conn = e.redis.pool.get().await.expect("redis");
    let _: () = redis::cmd("SET")
        .arg(keeper.marker_key())
        .arg("someone-else")
        .query_async(&mut *conn)
        .await
        .expect("SET");
    assert_eq!(keeper.step().await.expect("step"), Kept::Reconciled);
    assert_eq!(due(&e, &control_keys, "maintenance").await, Some(now));

    // The restored timeouts end the silent calls.
    let timeout_ms = e.svc.config.dialer.completion_timeout_ms;
    e.advance_to(e.clock.now_ms() + timeout_ms + 1_000).await;
    let still_open: Vec<i64> = open_attempt_ids(&e)
        .await
        .into_iter()
        .filter(|id| open.contains(id))
        .collect();
    assert!(still_open.is_empty(), "attempts left open: {still_open:?}");
    e.finish().await;
}
