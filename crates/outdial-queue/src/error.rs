//! [`QueueError`]: what can fail talking to a queue, down to a refused eviction policy.

/// What can go wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No connection could be taken from the pool.
    #[error("redis pool: {0}")]
    Pool(#[from] crate::pool::PoolError),
    /// A job payload could not be encoded as MessagePack.
    #[error("encoding job {id}: {source}")]
    Encode {
        /// id of the job being enqueued
        id: String,
        /// the encoder's error
        source: rmp_serde::encode::Error,
    },
    /// A script returned something other than what its header documents.
    #[error("unexpected reply from {script}: {detail}")]
    Protocol {
        /// name of the Lua script that replied
        script: &'static str,
        /// what was wrong
        detail: String,
    },
    /// Redis may evict keys under memory pressure, which would silently lose jobs (product §3).
    #[error(
        "redis maxmemory-policy is {0:?}; queues need noeviction (or a volatile-* policy, which never evicts keys without a TTL)"
    )]
    EvictionPolicy(String),
}
