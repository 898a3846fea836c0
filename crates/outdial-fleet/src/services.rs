//! Connections and shared pieces built from [`Config`]: one [`Services`] per process.

use std::sync::Arc;

use anyhow::Context;
use outdial_channels::Channels;
use outdial_clock::{Clock, OffsetClock, SystemClock};
use outdial_queue::{Queue, QueueConfig};
use outdial_store::Store;

use crate::config::Config;
use crate::events::Events;
use crate::jobs::{
    DIALER_QUEUE, DISPATCH_QUEUE, DialerJob, HEALTH_QUEUE, HealthJob, STATS_QUEUE, StatsJob,
};
use outdial_worker::WorkerConfig;

/// Everything a worker or the API talks to. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Services {
    /// Fleet settings, from `OUTDIAL_<SECTION>__<KEY>` variables.
    pub config: Arc<Config>,
    /// Postgres: the source of truth (product §3).
    pub store: Store,
    /// Redis connection pool.
    pub redis: outdial_queue::pool::Pool,
    /// Redis client for dedicated connections (pub/sub).
    pub redis_client: redis::Client,
    /// Source of every "now" (product §3 "Time"); a manual clock in tests.
    pub clock: Arc<dyn Clock>,
    /// Publishes events on Redis pub/sub, best effort (product §9).
    pub events: Events,
    /// SIP channel semaphore.
    pub channels: Channels,
    /// `campaign-dialer`: voice and SMS ticks, starts, originates, callbacks, timeouts.
    pub dialer_queue: Queue<DialerJob>,
    /// `campaign-dispatch`: the dialer's fleet-wide singleton jobs.
    pub dispatch_queue: Queue<DialerJob>,
    /// `campaign-health`: DID re-scores (product §7).
    pub health_queue: Queue<HealthJob>,
    /// `campaign-stats`: throttled stats aggregations (product §9).
    pub stats_queue: Queue<StatsJob>,
}

/// The clock the configuration asks for: the wall clock, or the wall clock plus
/// `clock.offset_ms`.
pub fn clock_from_config(cfg: &Config) -> Arc<dyn Clock> {
    if cfg.clock.offset_ms == 0 {
        Arc::new(SystemClock)
    } else {
        Arc::new(OffsetClock::with_offset_ms(cfg.clock.offset_ms))
    }
}

/// A Redis pool of `size` connections on `url`.
///
/// Errors: a malformed URL.
pub fn redis_pool(url: &str, size: usize) -> anyhow::Result<outdial_queue::pool::Pool> {
    outdial_queue::pool::pool(url, size).map_err(|e| anyhow::anyhow!("redis pool: {e}"))
}

impl Services {
    /// Connects to Postgres and Redis as configured, refusing a Redis that can evict queue
    /// keys (product §3). Does not run migrations.
    ///
    /// Errors: either service unreachable, or an evicting Redis.
    pub async fn connect(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store = Store::connect(&config.postgres.url, config.postgres.max_connections)
            .await
            .with_context(|| format!("connecting to Postgres at {}", config.postgres.url))?;
        let redis = redis_pool(&config.redis.url, config.redis.pool_size)?;
        outdial_queue::check_eviction_policy(&redis)
            .await
            .with_context(|| format!("checking Redis at {}", config.redis.url))?;
        let client = redis::Client::open(config.redis.url.as_str()).context("redis url")?;
        Ok(Self::from_parts(config, store, redis, client, clock))
    }

    /// Assembles services from existing connections (tests).
    pub fn from_parts(
        config: Config,
        store: Store,
        redis: outdial_queue::pool::Pool,
        redis_client: redis::Client,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let prefix = config.redis.prefix.clone();
        let queue = |name: &str| QueueConfig {
            name: name.to_owned(),
            prefix: prefix.clone(),
            lease_ms: config.queues.lease_ms,
            max_stalls: config.queues.max_stalls,
        };
        Self {
            store,
            events: Events::new(redis.clone(), prefix.clone()),
            channels: Channels::new(redis.clone(), prefix.clone(), config.channels.clone()),
            dialer_queue: Queue::new(redis.clone(), queue(DIALER_QUEUE)),
            dispatch_queue: Queue::new(redis.clone(), queue(DISPATCH_QUEUE)),
            health_queue: Queue::new(redis.clone(), queue(HEALTH_QUEUE)),
            stats_queue: Queue::new(redis.clone(), queue(STATS_QUEUE)),
            redis,
            redis_client,
            clock,
            config: Arc::new(config),
        }
    }

    /// Worker settings from the `queues` section, with `concurrency` handlers at once.
    pub fn worker_config(&self, concurrency: usize) -> WorkerConfig {
        let q = &self.config.queues;
        WorkerConfig {
            concurrency: concurrency.max(1),
            batch_max: q.batch_max.max(1),
            max_attempts: q.max_attempts.max(1),
            backoff_base_ms: q.backoff_base_ms,
            backoff_max_ms: q.backoff_max_ms,
            outage_backoff_base_ms: q.outage_backoff_base_ms,
            outage_backoff_max_ms: q.outage_backoff_max_ms,
            renew_every_ms: (q.lease_ms / 4).max(100),
            ..WorkerConfig::default()
        }
    }
}
