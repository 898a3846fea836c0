//! `outdial-api`: the HTTP API (product §10). Configuration from `OUTDIAL_…` variables
//! (`docs/configuration.md`); stops gracefully on SIGTERM or Ctrl-C.

/// The allocator of every outdial binary (workspace `Cargo.toml`: glibc malloc cost ~15 % of
/// the fleet's CPU under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let shutdown = outdial_worker::shutdown::signal();
    let config = outdial_fleet::config::from_env()?;
    outdial_fleet::telemetry::init_logging(&config.log.filter);
    outdial_api::run(config, shutdown).await
}
