//! # outdialctl
//!
//! The operator CLI (product §11): database migrations, organizations, tokens, caller IDs,
//! suppression lists, contact import, campaign control and status, queue and channel inspection
//! (with channel repair), and `demo` — the whole fleet running a campaign end to end on the local
//! services.
//!
//! Connections come from the same `OUTDIAL_…` variables as every outdial process
//! (`docs/configuration.md`). Modules: [`cli`] (arguments), [`commands`] (what they do), [`fleet`]
//! (starting the fleet's processes; shared with the end-to-end tests), [`demo`],
//! [`bench`](mod@bench), and `setup` (what the demo, the benchmarks and the commands share, so none
//! of them depends on another).

pub mod bench;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod fleet;
mod setup;

use std::process::ExitCode;

use clap::Parser;

/// Parses arguments, runs the command, prints errors with their causes. Exit code 0 on
/// success, 1 on failure, 2 for usage errors (clap).
pub async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    outdial_fleet::telemetry::init_logging(
        &std::env::var("OUTDIAL_LOG__FILTER").unwrap_or_else(|_| "warn".into()),
    );
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
