//! `outdial-health`: consumes `campaign-health` (SPEC §2). Configuration from `OUTDIAL_…`
//! variables (`docs/configuration.md`); stops gracefully on SIGTERM or Ctrl-C.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let shutdown = outdial_worker::shutdown::signal();
    let config = outdial_worker::config::from_env()?;
    outdial_worker::telemetry::init_logging(&config.log.filter);
    outdial_health::run(config, shutdown).await
}
