//! The life of a worker process, shared by `outdial-dialer`, `outdial-health` and
//! `outdial-stats`: serve `/metrics`, print a ready line, run the worker until shutdown,
//! stop the metrics server.

use outdial_queue::Job;

use crate::services::Services;
use crate::telemetry::serve_metrics;
use outdial_worker::{Handler, Worker};

/// Serves `/metrics` on `svc.config.metrics.listen`, prints `<name> ready metrics=<url>` to
/// stdout (the demo and tests wait for it), then runs `worker` with pub/sub wake-ups until
/// `shutdown` resolves.
///
/// Errors: the metrics address cannot be bound.
pub async fn run_worker<J: Job, H: Handler<J>>(
    name: &str,
    svc: &Services,
    worker: Worker<J, H>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let addr = serve_metrics(name, &svc.config.metrics.listen, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    })
    .await?;
    println!("{name} ready metrics=http://{addr}/metrics");
    let result = worker.run(Some(svc.redis_client.clone()), shutdown).await;
    let _ = stop_tx.send(true);
    result
}

/// Builds services from `config` with its clock.
///
/// Errors: Postgres or Redis unreachable, or an evicting Redis.
pub async fn connect(config: crate::config::Config) -> anyhow::Result<Services> {
    let clock = crate::services::clock_from_config(&config);
    Services::connect(config, clock).await
}
