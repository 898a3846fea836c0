//! The `outdial-api` binary: serves `/metrics` and stops cleanly on SIGTERM (SPEC §2); refuses a
//! bad configuration with a clear message.

use std::time::Duration;

use outdial_test_support::process::{metrics_url, start, terminate};
use outdial_test_support::{TestDb, TestRedis, fleet_env};

#[tokio::test]
async fn serves_metrics_and_stops_on_sigterm() {
    let db = TestDb::new(&outdial_store::MIGRATOR).await;
    let redis = TestRedis::new().await;
    let started = start(
        env!("CARGO_BIN_EXE_outdial-api"),
        &fleet_env(&db, &redis),
        "listening on",
    )
    .await;
    let url = metrics_url(&started.ready_line).expect("metrics URL in the ready line");
    let body = reqwest::get(&url)
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    assert!(
        body.is_empty() || body.contains("# TYPE") || body.contains("outdial_"),
        "Prometheus text: {body}"
    );
    assert_eq!(
        terminate(started, Duration::from_secs(20)).await,
        Some(0),
        "graceful exit on SIGTERM"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn refuses_an_unknown_setting_with_a_clear_error() {
    let mut env = std::collections::BTreeMap::new();
    env.insert("OUTDIAL_DIALER__POLL_INTERVAL".to_owned(), "5".to_owned());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_outdial-api"))
        .env_clear()
        .envs(&env)
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("poll_interval"),
        "names the bad key: {stderr}"
    );
}
