//! # outdial-channels
//!
//! The SIP channel semaphore (product §4): a Redis counter per pool that bounds simultaneous
//! calls — `campaign` 60, `ivr` 15, `api` 8 by default.
//!
//! - `channels:<pool>` (STRING) is the live count, changed with `INCR`/`DECR` exactly as the
//!   seed describes, with a TTL (3600 s) as a safety net: `redis-cli GET channels:campaign`
//!   shows how many channels are in use.
//! - `{channels:<pool>}:holders` (ZSET) records every holder with a lease deadline. A holder
//!   must be renewed while its call lives; one that is not (its pod was killed) is dropped on
//!   the next operation and its channel returns within the lease (60 s by default), instead
//!   of leaking until the TTL fires an hour later.
//! - Every operation is one Lua script, so the count never visibly exceeds the maximum and
//!   two pods never both take the last channel. The count is never allowed below the number
//!   of live holders, so the TTL firing while calls are live cannot reset the pool.
//!
//! Holder ids are chosen by the caller (outdial uses `contact:<id>:<attempt>`), which makes
//! acquire and release idempotent: retrying either never double-counts.

use std::collections::BTreeMap;

use outdial_queue::pool::Pool;
use redis::Script;
use serde::{Deserialize, Serialize};

/// Errors of the semaphore.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No connection available.
    #[error("redis pool: {0}")]
    Pool(#[from] outdial_queue::pool::PoolError),
    /// The pool name is not configured.
    #[error("unknown channel pool {0:?}")]
    UnknownPool(String),
}

/// The queue action a channel failure calls for (feature `worker`): Redis unreachable is
/// an outage ([`outdial_queue::redis_is_outage`]; wait, no attempt used), another Redis
/// error a retry; a pool name that is not configured will not appear by retrying (abort).
#[cfg(feature = "worker")]
impl From<ChannelError> for outdial_worker::JobError {
    fn from(e: ChannelError) -> Self {
        match &e {
            ChannelError::Redis(r) if outdial_queue::redis_is_outage(r) => Self::outage(e),
            ChannelError::Pool(_) => Self::outage(e),
            ChannelError::Redis(_) => Self::retry(e),
            ChannelError::UnknownPool(_) => Self::abort(e),
        }
    }
}

/// Pool sizes and lease timing (product §4, §12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelConfig {
    /// Pool name → maximum simultaneous channels.
    pub pools: BTreeMap<String, u32>,
    /// Holder lease, ms (60 000): an unrenewed holder's channel returns after this.
    pub lease_ms: i64,
    /// TTL of the count key, s (3 600): the seed's safety net, refreshed by every operation.
    pub ttl_s: i64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        let pools = [("campaign", 60), ("ivr", 15), ("api", 8)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        Self {
            pools,
            lease_ms: 60_000,
            ttl_s: 3_600,
        }
    }
}

/// One pool's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    /// Name, a key of [`ChannelConfig::pools`] (e.g. `campaign`).
    pub pool: String,
    /// Most channels held at once (`channels.pools.<name>`).
    pub max: u32,
    /// `GET channels:<pool>`.
    pub count: i64,
    /// Holders whose lease is still valid.
    pub live_holders: u64,
    /// Holders whose lease expired but were not yet pruned.
    pub expired_holders: u64,
    /// Seconds until the count key expires (−1 no TTL, −2 no key).
    pub ttl_s: i64,
}

impl PoolStatus {
    /// `count − live holders`: non-zero means the count drifted (repair fixes it).
    pub fn drift(&self) -> i64 {
        self.count - i64::try_from(self.live_holders).unwrap_or(i64::MAX)
    }
}

/// What [`Channels::repair`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    /// Count before.
    pub before: i64,
    /// Expired holders dropped.
    pub expired_dropped: i64,
    /// Count after (= live holders).
    pub after: i64,
}

struct Scripts {
    acquire: Script,
    release: Script,
    renew: Script,
    repair: Script,
}

/// The channel semaphore over all configured pools. Cheap to clone.
#[derive(Clone)]
pub struct Channels {
    pool: Pool,
    prefix: String,
    cfg: ChannelConfig,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels")
            .field("prefix", &self.prefix)
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl Channels {
    /// The semaphore on `pool` with key prefix `prefix` (`""` in production).
    pub fn new(pool: Pool, prefix: impl Into<String>, cfg: ChannelConfig) -> Self {
        let prune = include_str!("../lua/prune.lua");
        let with_prune = |body: &str| Script::new(&format!("{prune}\n{body}"));
        let scripts = Scripts {
            acquire: with_prune(include_str!("../lua/acquire.lua")),
            release: with_prune(include_str!("../lua/release.lua")),
            renew: with_prune(include_str!("../lua/renew.lua")),
            repair: with_prune(include_str!("../lua/repair.lua")),
        };
        Self {
            pool,
            prefix: prefix.into(),
            cfg,
            scripts: std::sync::Arc::new(scripts),
        }
    }

    /// The pool sizes and lease timing it was built with.
    pub fn config(&self) -> &ChannelConfig {
        &self.cfg
    }

    /// `(count key, holders key)` of `pool`, e.g. `("channels:campaign",
    /// "{channels:campaign}:holders")`.
    pub fn keys(&self, pool: &str) -> (String, String) {
        let count = format!("{}channels:{pool}", self.prefix);
        let holders = format!("{{{count}}}:holders");
        (count, holders)
    }

    fn max(&self, pool: &str) -> Result<u32, ChannelError> {
        self.cfg
            .pools
            .get(pool)
            .copied()
            .ok_or_else(|| ChannelError::UnknownPool(pool.to_owned()))
    }

    /// Takes one channel of `pool` for each of `holders`, in order, until the pool is full.
    /// Returns how many got one: `holders[..n]` hold channels, the rest do not (backpressure:
    /// product §4 re-queues them 5 s later). Holders that already hold a channel keep it.
    ///
    /// Errors: unknown pool, Redis failures (nothing acquired then).
    pub async fn acquire(
        &self,
        pool: &str,
        holders: &[String],
        now_ms: i64,
    ) -> Result<usize, ChannelError> {
        let max = self.max(pool)?;
        if holders.is_empty() {
            return Ok(0);
        }
        let (count, set) = self.keys(pool);
        let mut conn = self.pool.get().await?;
        let n: usize = self
            .scripts
            .acquire
            .key(count)
            .key(set)
            .arg(now_ms)
            .arg(self.cfg.lease_ms)
            .arg(max)
            .arg(self.cfg.ttl_s)
            .arg(holders)
            .invoke_async(&mut *conn)
            .await?;
        Ok(n)
    }

    /// Gives back the channels of `holders`; holders without one are ignored, so releasing
    /// twice is harmless. Returns how many were released.
    ///
    /// Errors: unknown pool, Redis failures.
    pub async fn release(
        &self,
        pool: &str,
        holders: &[String],
        now_ms: i64,
    ) -> Result<usize, ChannelError> {
        self.max(pool)?;
        if holders.is_empty() {
            return Ok(0);
        }
        let (count, set) = self.keys(pool);
        let mut conn = self.pool.get().await?;
        let n: usize = self
            .scripts
            .release
            .key(count)
            .key(set)
            .arg(now_ms)
            .arg(self.cfg.ttl_s)
            .arg(holders)
            .invoke_async(&mut *conn)
            .await?;
        Ok(n)
    }

    /// Extends the leases of `holders` (their calls are still live) to `now + lease`.
    /// Returns how many were still holding.
    ///
    /// Errors: unknown pool, Redis failures.
    pub async fn renew(
        &self,
        pool: &str,
        holders: &[String],
        now_ms: i64,
    ) -> Result<usize, ChannelError> {
        self.max(pool)?;
        let (count, set) = self.keys(pool);
        let mut conn = self.pool.get().await?;
        let n: usize = self
            .scripts
            .renew
            .key(count)
            .key(set)
            .arg(now_ms)
            .arg(self.cfg.lease_ms)
            .arg(self.cfg.ttl_s)
            .arg(holders)
            .invoke_async(&mut *conn)
            .await?;
        Ok(n)
    }

    /// The state of `pool` at `now_ms`, read without changing anything.
    ///
    /// Errors: unknown pool, Redis failures.
    pub async fn status(&self, pool: &str, now_ms: i64) -> Result<PoolStatus, ChannelError> {
        let max = self.max(pool)?;
        let (count, set) = self.keys(pool);
        let mut conn = self.pool.get().await?;
        let (value, live, expired, ttl): (Option<i64>, u64, u64, i64) = redis::pipe()
            .get(&count)
            .zcount(&set, format!("({now_ms}"), "+inf")
            .zcount(&set, "-inf", now_ms)
            .ttl(&count)
            .query_async(&mut *conn)
            .await?;
        Ok(PoolStatus {
            pool: pool.to_owned(),
            max,
            count: value.unwrap_or(0),
            live_holders: live,
            expired_holders: expired,
            ttl_s: ttl,
        })
    }

    /// Status of every configured pool, in name order.
    ///
    /// Errors: Redis failures.
    pub async fn status_all(&self, now_ms: i64) -> Result<Vec<PoolStatus>, ChannelError> {
        let mut out = Vec::with_capacity(self.cfg.pools.len());
        for pool in self.cfg.pools.keys() {
            out.push(self.status(pool, now_ms).await?);
        }
        Ok(out)
    }

    /// Holders of `pool` with their lease deadlines (ms), earliest first.
    ///
    /// Errors: unknown pool, Redis failures.
    pub async fn holders(&self, pool: &str) -> Result<Vec<(String, i64)>, ChannelError> {
        self.max(pool)?;
        let (_, set) = self.keys(pool);
        let mut conn = self.pool.get().await?;
        let raw: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&set)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut *conn)
            .await?;
        Ok(raw
            .into_iter()
            .map(|(h, s)| (h, s.round() as i64))
            .collect())
    }

    /// Drops expired holders and sets the count to the live holders (`outdialctl channels
    /// --repair`, product §11).
    ///
    /// Errors: unknown pool, Redis failures.
    pub async fn repair(&self, pool: &str, now_ms: i64) -> Result<RepairReport, ChannelError> {
        self.max(pool)?;
        let (count, set) = self.keys(pool);
        let mut conn = self.pool.get().await?;
        let (before, expired_dropped, after): (i64, i64, i64) = self
            .scripts
            .repair
            .key(count)
            .key(set)
            .arg(now_ms)
            .arg(self.cfg.ttl_s)
            .invoke_async(&mut *conn)
            .await?;
        Ok(RepairReport {
            before,
            expired_dropped,
            after,
        })
    }
}
