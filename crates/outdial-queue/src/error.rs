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

impl QueueError {
    /// Whether the failure is an outage of Redis rather than a fault of the job: see
    /// [`redis_is_outage`]; an exhausted or failing connection pool is one too. Jobs retry
    /// an outage for as long as it lasts (product §3 "Outages").
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Redis(e) => redis_is_outage(e),
            Self::Pool(_) => true,
            Self::Encode { .. } | Self::Protocol { .. } | Self::EvictionPolicy(_) => false,
        }
    }
}

/// Whether a Redis error means Redis is unreachable or not serving right now — a refused,
/// dropped or timed-out connection, a server loading its data (`LOADING`), a cluster that
/// is down, re-sharding or without a master (`CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN`), or a
/// replica that became read-only in a failover (`READONLY`) — rather than a statement Redis
/// refused (a script error, a wrong type), which retrying would not change.
pub fn redis_is_outage(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        )
}
