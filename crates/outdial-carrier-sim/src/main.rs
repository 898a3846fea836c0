//! `outdial-carrier-sim`: the simulated carrier (see the `outdial_carrier_sim` library). Prints
//! `outdial-carrier-sim listening on http://<addr>` once bound, logs to stderr, and stops
//! gracefully on SIGTERM or Ctrl-C.

use std::io::Write as _;

use anyhow::Context as _;
use clap::Parser as _;
use outdial_carrier_sim::{self as sim, cli::SimArgs};
use tokio::signal::unix::{SignalKind, signal};

/// The allocator of every outdial binary (workspace `Cargo.toml`: glibc malloc cost ~15 % of
/// the fleet's CPU under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Installed before the ready line, so an early SIGTERM is a graceful stop.
    let shutdown = shutdown_signal();
    let args = SimArgs::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = args.to_config()?;
    // `/metrics` on its own listener (port 0 by default), like every outdial process.
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    let metrics_addr = args
        .metrics_listen
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("binding metrics listener {metrics_addr}"))?;
    let metrics_addr = metrics_listener.local_addr()?;
    let metrics_app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(handle.render())),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(metrics_listener, metrics_app).await {
            tracing::error!(%error, "metrics server failed");
        }
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "outdial-carrier-sim listening on http://{addr} metrics=http://{metrics_addr}/metrics"
    )?;
    stdout.flush()?;
    drop(stdout);
    sim::serve(listener, cfg, shutdown).await
}

/// A future completing on SIGTERM or SIGINT; the handlers are installed by this call, not
/// on first poll.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            },
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot listen for signals; stopping only when killed");
                std::future::pending::<()>().await;
            }
        }
        tracing::info!("shutdown signal received");
    }
}
