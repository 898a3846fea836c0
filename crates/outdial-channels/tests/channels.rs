//! The channel semaphore against a real Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use outdial_channels::{ChannelConfig, Channels};
use outdial_test_support::TestRedis;

const T0: i64 = 1_800_000_000_000;

fn channels(redis: &TestRedis, max: u32) -> Channels {
    let mut cfg = ChannelConfig::default();
    cfg.pools.insert("campaign".into(), max);
    Channels::new(redis.pool.clone(), redis.prefix.clone(), cfg)
}

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn count_is_a_plain_string_with_a_ttl() {
    let redis = TestRedis::new().await;
    let ch = channels(&redis, 3);
    assert_eq!(
        ch.acquire("campaign", &ids(&["a", "b"]), T0)
            .await
            .expect("acquire"),
        2
    );
    let (count_key, _) = ch.keys("campaign");
    assert_eq!(count_key, format!("{}channels:campaign", redis.prefix));
    let mut conn = redis.pool.get().await.expect("redis");
    let (value, ttl): (String, i64) = redis::pipe()
        .get(&count_key)
        .ttl(&count_key)
        .query_async(&mut *conn)
        .await
        .expect("GET");
    assert_eq!(
        value, "2",
        "redis-cli GET channels:campaign shows the live count"
    );
    assert!((3_590..=3_600).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn full_pool_refuses_and_release_frees() {
    let redis = TestRedis::new().await;
    let ch = channels(&redis, 2);
    assert_eq!(
        ch.acquire("campaign", &ids(&["a", "b", "c"]), T0)
            .await
            .expect("acquire"),
        2,
        "only the first two fit"
    );
    assert_eq!(
        ch.acquire("campaign", &ids(&["c"]), T0)
            .await
            .expect("acquire"),
        0
    );
    assert_eq!(
        ch.acquire("campaign", &ids(&["a"]), T0)
            .await
            .expect("acquire"),
        1,
        "re-acquire by a holder is idempotent"
    );
    assert_eq!(ch.status("campaign", T0).await.expect("status").count, 2);
    assert_eq!(
        ch.release("campaign", &ids(&["a", "a", "zzz"]), T0)
            .await
            .expect("release"),
        1,
        "double and unknown release ignored"
    );
    assert_eq!(
        ch.acquire("campaign", &ids(&["c"]), T0)
            .await
            .expect("acquire"),
        1
    );
    assert!(ch.acquire("ivr-typo", &ids(&["x"]), T0).await.is_err());
}

#[tokio::test]
async fn a_dead_holder_returns_its_channel_within_the_lease() {
    let redis = TestRedis::new().await;
    let ch = channels(&redis, 1); // lease 60 s
    assert_eq!(
        ch.acquire("campaign", &ids(&["killed-pod"]), T0)
            .await
            .expect("acquire"),
        1
    );
    assert_eq!(
        ch.acquire("campaign", &ids(&["other"]), T0 + 59_999)
            .await
            .expect("acquire"),
        0,
        "still leased"
    );
    assert_eq!(
        ch.acquire("campaign", &ids(&["other"]), T0 + 60_000)
            .await
            .expect("acquire"),
        1,
        "lease ran out"
    );
    let s = ch.status("campaign", T0 + 60_000).await.expect("status");
    assert_eq!((s.count, s.live_holders, s.drift()), (1, 1, 0));
}

#[tokio::test]
async fn renewed_holders_keep_their_channels() {
    let redis = TestRedis::new().await;
    let ch = channels(&redis, 1);
    ch.acquire("campaign", &ids(&["live-call"]), T0)
        .await
        .expect("acquire");
    assert_eq!(
        ch.renew("campaign", &ids(&["live-call", "gone"]), T0 + 50_000)
            .await
            .expect("renew"),
        1
    );
    assert_eq!(
        ch.acquire("campaign", &ids(&["other"]), T0 + 100_000)
            .await
            .expect("acquire"),
        0
    );
}

#[tokio::test]
async fn ttl_firing_cannot_reset_the_count_under_live_holders() {
    let redis = TestRedis::new().await;
    let ch = channels(&redis, 2);
    ch.acquire("campaign", &ids(&["a", "b"]), T0)
        .await
        .expect("acquire");
    let (count_key, _) = ch.keys("campaign");
    let mut conn = redis.pool.get().await.expect("redis");
    let _: () = redis::cmd("DEL")
        .arg(&count_key)
        .query_async(&mut *conn)
        .await
        .expect("simulate TTL expiry");
    assert_eq!(
        ch.acquire("campaign", &ids(&["c"]), T0 + 1)
            .await
            .expect("acquire"),
        0,
        "pool is still full"
    );
    assert_eq!(
        ch.status("campaign", T0 + 1).await.expect("status").count,
        2
    );
}

#[tokio::test]
async fn repair_fixes_drift() {
    let redis = TestRedis::new().await;
    let ch = channels(&redis, 5);
    ch.acquire("campaign", &ids(&["a"]), T0)
        .await
        .expect("acquire");
    let (count_key, _) = ch.keys("campaign");
    let mut conn = redis.pool.get().await.expect("redis");
    let _: () = redis::cmd("INCRBY")
        .arg(&count_key)
        .arg(3)
        .query_async(&mut *conn)
        .await
        .expect("drift");
    assert_eq!(ch.status("campaign", T0).await.expect("status").drift(), 3);
    let r = ch.repair("campaign", T0).await.expect("repair");
    assert_eq!((r.before, r.after), (4, 1));
    assert_eq!(ch.status("campaign", T0).await.expect("status").drift(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn never_above_max_with_32_concurrent_acquirers_across_connections() {
    const MAX: u32 = 5;
    const WORKERS: usize = 32;
    let redis = TestRedis::new().await;
    let holding = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let first_round_grants = Arc::new(AtomicUsize::new(0));
    let sampled_max = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tried = Arc::new(tokio::sync::Barrier::new(WORKERS));

    // A sampler reading the count key as an operator would, on its own connection.
    let sampler = {
        let (count_key, _) = channels(&redis, MAX).keys("campaign");
        let client = redis.client.clone();
        let (sampled_max, stop) = (Arc::clone(&sampled_max), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("sampler connection");
            while !stop.load(Ordering::SeqCst) {
                let v: Option<i64> = redis::cmd("GET")
                    .arg(&count_key)
                    .query_async(&mut conn)
                    .await
                    .expect("GET");
                sampled_max.fetch_max(v.unwrap_or(0), Ordering::SeqCst);
            }
        })
    };

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            // Each acquirer has a pool of exactly one connection of its own.
            let own = outdial_queue::pool::pool(&redis.url, 1).expect("pool");
            let mut cfg = ChannelConfig::default();
            cfg.pools.insert("campaign".into(), MAX);
            let ch = Channels::new(own, redis.prefix.clone(), cfg);
            let (holding, peak, first, tried) = (
                Arc::clone(&holding),
                Arc::clone(&peak),
                Arc::clone(&first_round_grants),
                Arc::clone(&tried),
            );
            tokio::spawn(async move {
                for i in 0..40 {
                    let me = vec![format!("w{w}-{i}")];
                    let got = ch.acquire("campaign", &me, T0).await.expect("acquire") == 1;
                    if got {
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        if i == 0 {
                            first.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    if i == 0 {
                        // Round 0: everyone tries while the winners hold, so exactly MAX win.
                        tried.wait().await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                    if got {
                        holding.fetch_sub(1, Ordering::SeqCst);
                        assert_eq!(ch.release("campaign", &me, T0).await.expect("release"), 1);
                    }
                }
            })
        })
        .collect();
    for w in futures::future::join_all(workers).await {
        w.expect("worker");
    }
    stop.store(true, Ordering::SeqCst);
    sampler.await.expect("sampler");

    assert_eq!(
        first_round_grants.load(Ordering::SeqCst),
        MAX as usize,
        "32 simultaneous acquirers: exactly MAX win"
    );
    assert!(
        peak.load(Ordering::SeqCst) <= MAX as usize,
        "peak holders {}",
        peak.load(Ordering::SeqCst)
    );
    assert!(
        sampled_max.load(Ordering::SeqCst) <= i64::from(MAX),
        "sampled count {}",
        sampled_max.load(Ordering::SeqCst)
    );
    let s = channels(&redis, MAX)
        .status("campaign", T0)
        .await
        .expect("status");
    assert_eq!((s.count, s.live_holders), (0, 0), "everything released");
}
