//! # outdial-worker
//!
//! What every outdial process shares, so each binary's `main.rs` stays a few dozen lines
//! (STYLE habit 1):
//!
//! | module | what |
//! |---|---|
//! | [`batch`] | group commit: concurrent requests gathered into one statement |
//! | [`config`] | the fleet's typed configuration, one section per concern, from `OUTDIAL_…` variables |
//! | [`telemetry`] | tracing to stderr, the Prometheus recorder and the `/metrics` + `/healthz` server |
//! | [`shutdown`] | SIGTERM / Ctrl-C as a future |
//! | [`services`] | connections built from config: Postgres store, Redis pool, queues, channels, events, clock |
//! | [`jobs`] | payloads of the three queues (`campaign-dialer`, `campaign-health`, `campaign-stats`) and their ids |
//! | [`events`] | campaign and DID events published on Redis pub/sub (SPEC §9) |
//! | [`runtime`] | the worker loop: reserve a batch → handle concurrently → settle in batches, with lease renewal, retries with exponential backoff, dead letters and graceful shutdown |

pub mod batch;
pub mod config;
pub mod events;
pub mod jobs;
pub mod process;
pub mod runtime;
pub mod services;
pub mod shutdown;
pub mod telemetry;

pub use runtime::{Done, Handler, JobContext, JobError, Outcome, Worker, WorkerConfig};
