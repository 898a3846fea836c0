//! The `outdial-carrier-sim` binary: prints its address and metrics URL, serves both, stops on
//! SIGTERM.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn binary_prints_its_address_and_stops_on_sigterm() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_outdial-carrier-sim"))
        .args(["--listen", "127.0.0.1:0", "--instant", "--seed", "1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let rest = line
        .strip_prefix("outdial-carrier-sim listening on ")
        .unwrap();
    let (base, metrics) = rest.split_once(' ').unwrap();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{line}"
    );
    let metrics_url = metrics.strip_prefix("metrics=").unwrap();
    let metrics = reqwest::get(metrics_url).await.unwrap();
    assert_eq!(metrics.status(), 200, "serves /metrics");

    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let stats: serde_json::Value = reqwest::get(format!("{base}/sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["calls_total"], 0);

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        lines.next_line().await.unwrap(),
        None,
        "exactly one stdout line"
    );
}
