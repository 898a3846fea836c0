//! `outdial-carrier-sim`: the simulated carrier (see `outdial_carrier::sim`). Prints
//! `outdial-carrier-sim listening on http://<addr>` once bound, logs to stderr, and stops
//! gracefully on SIGTERM or Ctrl-C.

use std::io::Write as _;

use anyhow::Context as _;
use clap::Parser as _;
use outdial_carrier::sim::{self, cli::SimArgs};
use tokio::signal::unix::{SignalKind, signal};

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
    if let Some(addr) = args.metrics_listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("serving metrics on {addr}"))?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "outdial-carrier-sim listening on http://{addr}")?;
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
