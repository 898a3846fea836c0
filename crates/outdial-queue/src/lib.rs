//! # outdial-queue
//!
//! A Redis-backed delayed job queue (product §3), generic over the job payload. It is built for
//! exact timing and throughput:
//!
//! - **Delayed jobs** carry a due time in ms; a job is never handed out before it. Workers
//!   sleep on a client-side timer until the earliest due time and are woken early by a
//!   pub/sub message when a new earliest job arrives — never by a blocking pop's timeout,
//!   which Redis checks only `hz` times a second (BullMQ's ~100 ms lateness).
//! - **Batches**: [`Queue::reserve`] leases up to N due jobs and [`Queue::settle`] acks,
//!   retries or dead-letters up to N, each in one round trip running one Lua script.
//! - **Leases**: a reserved job is leased until a deadline, with a fencing token that
//!   renewals do not change; a worker that dies loses it, and the next reserve returns the
//!   job to waiting. A job that stalls more than `max_stalls` times is dead-lettered.
//! - **Dedup by id**: a job enqueued with an explicit id while one with that id is waiting,
//!   delayed or active is not enqueued again. [`Settle::Ack`] can enqueue successors in the
//!   same script, so a self-enqueueing job (a campaign tick) hands over to its next run
//!   atomically — never two in flight, never none.
//! - **Nothing left behind**: an ack deletes every trace of the job.
//! - **Corrupt payloads** are dead-lettered with the decode error, never crash a worker.
//! - **Time** comes from the caller (`now_ms` arguments) and is passed into Lua.
//!
//! Keys are listed in `docs/redis-keys.md`; all keys of one queue share the hash tag
//! `{<queue>}` so every script runs on Redis Cluster.

mod error;
mod keys;
pub mod pool;
mod queue;

pub use error::{QueueError, redis_is_outage};
pub use keys::QueueKeys;
pub use queue::{
    DeadLetter, Dedup, EnqueueOutcome, Envelope, Job, NewJob, Queue, QueueConfig, QueueCounts,
    Reservation, Reserved, Settle, WakeSubscription, check_eviction_policy,
};
