//! Logging and metrics (product §9, STYLE habits 12–13).
//!
//! Logs go to stderr through `tracing`. Metrics are recorded through the `metrics` facade
//! into the Prometheus recorder of `metrics-exporter-prometheus` and served with `/healthz`
//! by [`serve_metrics`] on the configured address. Metric names follow
//! `outdial_<subsystem>_<name>` with `_total` / `_seconds` suffixes.

use std::net::SocketAddr;
use std::sync::OnceLock;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Installs the stderr log subscriber with `filter` (e.g. `info`). Later calls do nothing.
pub fn init_logging(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}

/// Installs the global Prometheus recorder once and returns its handle.
///
/// Errors: another recorder was installed by someone else.
pub fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let buckets = [
        0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Serves `GET /metrics` (Prometheus text format) and `GET /healthz` on `listen` until
/// `shutdown` resolves. Returns the bound address (port 0 picks one) once listening.
///
/// Before serving it sets `outdial_build_info{process, version} 1` — `process` is the
/// binary's name (`outdial-dialer`, …), `version` the crate version — so every process's
/// `/metrics` says what it is from its first scrape, and a probe can tell an outdial
/// exporter from any other 200.
///
/// Errors: the address cannot be bound, or the recorder cannot be installed.
pub async fn serve_metrics(
    process: &str,
    listen: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let handle = metrics_handle()?;
    metrics::gauge!("outdial_build_info", "process" => process.to_owned(), "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let app = Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/healthz", get(|| std::future::ready("ok")));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding metrics listener {listen}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    Ok(addr)
}
