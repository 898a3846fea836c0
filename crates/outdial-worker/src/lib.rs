//! # outdial-worker
//!
//! The generic job runtime of outdial's queue consumers (product §3, STYLE habits 2 and 3):
//! reserve a batch of due jobs → run their handlers concurrently → settle the results in
//! batches, with lease renewal, retries with exponential backoff, dead letters, pub/sub
//! wake-ups and graceful shutdown. It knows nothing of outdial's services: a consumer needs
//! only [`outdial_queue`] for its jobs and an [`outdial_clock::Clock`].
//!
//! | item | what |
//! |---|---|
//! | [`Worker`] | a queue, a [`Handler`] and a clock: [`Worker::run`] until shutdown, or [`Worker::try_execute_once`] step by step in tests |
//! | [`Handler`], [`JobContext`] | what a consumer implements, and what it is told about the job it runs |
//! | [`Done`], [`JobError`] | a handler's result: successors and withdrawals to settle with the ack, or retry / dead-letter with the cause |
//! | [`WorkerConfig`] | concurrency, batch sizes, attempts, backoff, lease renewal, idle and shutdown timings |
//! | [`shutdown`] | SIGTERM / Ctrl-C as a future |

mod runtime;
pub mod shutdown;

pub use runtime::{Done, Handler, JobContext, JobError, Outcome, Worker, WorkerConfig};
