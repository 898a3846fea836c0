//! # outdial-fleet
//!
//! What every outdial process shares beyond the job runtime ([`outdial_worker`]), so each
//! binary's `main.rs` stays a few dozen lines (STYLE habit 1):
//!
//! | module | what |
//! |---|---|
//! | [`config`] | the fleet's typed configuration, one section per concern, from `OUTDIAL_…` variables |
//! | [`services`] | connections built from config: Postgres store, Redis pool, queues, channels, events, clock |
//! | [`jobs`] | payloads of the queues (`campaign-dialer`, `campaign-dispatch`, `campaign-health`, `campaign-stats`) and their ids |
//! | [`events`] | campaign and DID events published on Redis pub/sub (product §9) |
//! | [`batch`] | group commit: concurrent store writes gathered into one statement |
//! | [`telemetry`] | tracing to stderr, the Prometheus recorder and the `/metrics` + `/healthz` server |
//! | [`process`] | the life of a worker process: serve `/metrics`, print the ready line, run until shutdown |

pub mod batch;
pub mod config;
pub mod events;
pub mod jobs;
pub mod process;
pub mod services;
pub mod telemetry;
