//! The `outdial-api` binary: serves `/metrics` and stops cleanly on SIGTERM (product §2); refuses a
//! bad configuration with a clear message.

use outdial_test_support::process::{
    assert_refuses_an_unknown_setting, assert_serves_metrics_and_stops_on_sigterm,
};

const BIN: &str = env!("CARGO_BIN_EXE_outdial-api");

#[tokio::test]
async fn serves_metrics_and_stops_on_sigterm() {
    assert_serves_metrics_and_stops_on_sigterm(BIN, "listening on", &outdial_store::MIGRATOR).await;
}

#[tokio::test]
async fn refuses_an_unknown_setting_with_a_clear_error() {
    assert_refuses_an_unknown_setting(BIN).await;
}
