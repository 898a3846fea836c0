//! The queue itself: typed envelopes over the Lua scripts in `lua/`.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use crate::pool::Pool;
use futures::{Stream, StreamExt};
use redis::{Script, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::QueueError;
use crate::keys::QueueKeys;

/// A job payload: MessagePack-serializable, with a short kind name for logs and metrics.
pub trait Job: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// A short, stable name of the job's kind (e.g. `"voice_tick"`), used in metric labels.
    fn kind(&self) -> &'static str;
}

/// What is stored in Redis for each job (MessagePack, product §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<J> {
    /// Job id: explicit (for deduplication) or random.
    pub id: String,
    /// [`Job::kind`] of the payload.
    pub kind: String,
    /// The job itself, MessagePack-encoded with the envelope.
    pub payload: J,
    /// 0 for the first run; +1 for each retry after a failure.
    pub attempt: u32,
    /// When it was enqueued, ms since the epoch.
    pub enqueued_ms: i64,
    /// When it was first due, ms since the epoch (the scheduled score may later move
    /// earlier with [`Dedup::KeepEarliest`], or later with a retry).
    pub due_ms: i64,
    /// Outages in a row it met (a dependency down, not a fault of the job): they do not
    /// count as attempts; the worker's outage backoff grows with them. Absent in envelopes
    /// stored before the field existed (read as 0).
    #[serde(default)]
    pub outages: u32,
}

/// What to do when a job with the same id is already waiting, delayed or active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dedup {
    /// Keep the existing job; drop the new one.
    #[default]
    Skip,
    /// Keep the existing job, but if it is scheduled later than the new one, move it to the
    /// new due time (its payload is kept). Used to wake a sleeping campaign tick early.
    KeepEarliest,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob<J> {
    /// Explicit id for deduplication; `None` gets a random 128-bit id.
    pub id: Option<String>,
    /// The job to run.
    pub payload: J,
    /// Due time, ms since the epoch; it is never handed out earlier.
    pub due_ms: i64,
    /// Duplicate handling when `id` is set.
    pub dedup: Dedup,
}

impl<J> NewJob<J> {
    /// A job with a random id, due at `due_ms`.
    pub fn new(payload: J, due_ms: i64) -> Self {
        Self {
            id: None,
            payload,
            due_ms,
            dedup: Dedup::Skip,
        }
    }

    /// Sets an explicit id: no second job with this id is enqueued while one is waiting,
    /// delayed or active.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// With [`Dedup::KeepEarliest`]: a scheduled job with the same id moves up to this due time.
    pub fn keep_earliest(mut self) -> Self {
        self.dedup = Dedup::KeepEarliest;
        self
    }
}

/// Result of enqueueing one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// Stored and scheduled.
    Added,
    /// A job with that id was already waiting, delayed or active.
    Duplicate,
    /// A job with that id was scheduled later and was moved to the new due time.
    MovedEarlier,
}

/// A leased job.
#[derive(Debug, Clone, PartialEq)]
pub struct Reserved<J> {
    /// The decoded envelope.
    pub envelope: Envelope<J>,
    /// The lease token: settles or renews this lease. A fencing token, unchanged by renewals
    /// and never handed out twice, so a worker whose lease expired cannot settle the job its
    /// next holder runs.
    pub lease: i64,
    /// When the lease expires unless renewed, ms.
    pub deadline_ms: i64,
    /// The due time it was scheduled at (ms); `reserved_at_ms − due_ms` is its lateness.
    pub scheduled_ms: i64,
}

/// What one [`Queue::reserve`] returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation<J> {
    /// Leased jobs, earliest due first.
    pub jobs: Vec<Reserved<J>>,
    /// When something next needs attention (earliest scheduled job or lease deadline), ms.
    pub next_due_ms: Option<i64>,
    /// Jobs whose lease had expired and were returned to waiting by this call.
    pub recovered: u64,
    /// Jobs dead-lettered by this call: stalled too often, or undecodable payloads.
    pub dead_lettered: u64,
}

/// How to finish a leased job.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle<J> {
    /// Done: delete it, enqueue `successors` and withdraw the jobs `withdraw` in the same
    /// atomic step.
    Ack {
        /// [`Envelope::id`] of the leased job
        id: String,
        /// lease token from [`Reserved::lease`]
        lease: i64,
        /// jobs to enqueue only if this ack succeeds (e.g. the next campaign tick)
        successors: Vec<NewJob<J>>,
        /// ids of other jobs of this queue that this ack makes pointless (e.g. the timeout
        /// of a call that has just completed): each is deleted if it is scheduled (waiting or
        /// delayed); one that is active is left to its holder, an unknown id is ignored
        withdraw: Vec<String>,
    },
    /// Failed: store `envelope` (with its attempt incremented) and run it again at `due_ms`.
    Retry {
        /// fencing token from [`Reserved::lease`]
        lease: i64,
        /// the envelope to store
        envelope: Envelope<J>,
        /// when to run again, ms
        due_ms: i64,
    },
    /// Failed for good: move to the dead-letter set with `error`.
    DeadLetter {
        /// [`Envelope::id`] of the leased job
        id: String,
        /// fencing token from [`Reserved::lease`]
        lease: i64,
        /// why, kept with the dead letter (`outdialctl queues --dead`)
        error: String,
    },
    /// Not processed (shutdown): back to waiting now, not counted as a stall.
    HandBack {
        /// [`Envelope::id`] of the leased job
        id: String,
        /// fencing token from [`Reserved::lease`]
        lease: i64,
    },
}

/// Queue depth (for `outdialctl queues`, metrics and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct QueueCounts {
    /// Scheduled jobs already due.
    pub waiting: u64,
    /// Scheduled jobs not yet due.
    pub delayed: u64,
    /// Leased jobs.
    pub active: u64,
    /// Dead letters.
    pub dead: u64,
    /// Due time of the earliest scheduled job, ms.
    pub oldest_due_ms: Option<i64>,
}

/// A dead-lettered job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// [`Envelope::id`] of the dead job
    pub id: String,
    /// when it died, ms
    pub failed_ms: i64,
    /// the error it was dead-lettered with
    pub error: String,
    /// its kind, if the envelope decodes
    pub kind: Option<String>,
    /// its attempt count, if the envelope decodes
    pub attempt: Option<u32>,
}

/// What a queue is opened with: name, key prefix, lease and stall limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Queue name, e.g. `campaign-dialer`.
    pub name: String,
    /// Key prefix: `""` in production, a random prefix per test.
    pub prefix: String,
    /// Lease length, ms: a job whose worker stops renewing returns to waiting after this.
    pub lease_ms: i64,
    /// Stalls after which a job is dead-lettered instead of returned: expiries of its lease
    /// while its holder was alive (still reserving or renewing). A lease that expires
    /// because its holder is gone (a killed pod) is not a stall.
    pub max_stalls: u32,
}

impl QueueConfig {
    /// Defaults for queue `name`: no prefix, 4 s lease (renewed every second by the worker,
    /// so a dead holder's jobs return within 4 s), dead after 3 stalls.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            prefix: String::new(),
            lease_ms: 4_000,
            max_stalls: 3,
        }
    }
}

struct Scripts {
    enqueue: Script,
    reserve: Script,
    settle: Script,
    extend: Script,
    requeue_dead: Script,
}

impl Scripts {
    fn load() -> Self {
        let lib = include_str!("../lua/lib.lua");
        Self {
            enqueue: Script::new(&format!("{lib}\n{}", include_str!("../lua/enqueue.lua"))),
            reserve: Script::new(&format!("{lib}\n{}", include_str!("../lua/reserve.lua"))),
            settle: Script::new(&format!("{lib}\n{}", include_str!("../lua/settle.lua"))),
            extend: Script::new(include_str!("../lua/extend.lua")),
            requeue_dead: Script::new(include_str!("../lua/requeue_dead.lua")),
        }
    }
}

struct Inner {
    pool: Pool,
    holder: String,
    keys: QueueKeys,
    cfg: QueueConfig,
    scripts: Scripts,
}

/// A queue of jobs of type `J`. Cheap to clone; clones share the pool.
pub struct Queue<J> {
    inner: Arc<Inner>,
    _job: PhantomData<fn() -> J>,
}

impl<J> Clone for Queue<J> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            _job: PhantomData,
        }
    }
}

impl<J> std::fmt::Debug for Queue<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.cfg.name)
            .field("prefix", &self.inner.cfg.prefix)
            .finish()
    }
}

/// Refuses a Redis whose `maxmemory-policy` can evict keys without a TTL (`allkeys-*`):
/// evicted queue keys are lost jobs (product §3). `noeviction` and `volatile-*` pass.
///
/// Errors: [`QueueError::EvictionPolicy`] for an evicting policy; Redis errors otherwise.
pub async fn check_eviction_policy(pool: &Pool) -> Result<(), QueueError> {
    let mut conn = pool.get().await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut *conn)
        .await?;
    let policy = info
        .lines()
        .find_map(|l| l.strip_prefix("maxmemory_policy:"))
        .map(str::trim)
        .unwrap_or("noeviction");
    if policy.starts_with("allkeys") {
        return Err(QueueError::EvictionPolicy(policy.to_owned()));
    }
    Ok(())
}

fn encode<J: Job>(envelope: &Envelope<J>) -> Result<Vec<u8>, QueueError> {
    rmp_serde::to_vec_named(envelope).map_err(|source| QueueError::Encode {
        id: envelope.id.clone(),
        source,
    })
}

fn protocol(script: &'static str, detail: impl Into<String>) -> QueueError {
    QueueError::Protocol {
        script,
        detail: detail.into(),
    }
}

fn as_i64(script: &'static str, v: &Value) -> Result<i64, QueueError> {
    match v {
        Value::Int(n) => Ok(*n),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map(|f| f.round() as i64)
            .ok_or_else(|| protocol(script, "number expected")),
        other => Err(protocol(script, format!("number expected, got {other:?}"))),
    }
}

fn as_string(script: &'static str, v: &Value) -> Result<String, QueueError> {
    match v {
        Value::BulkString(b) => {
            String::from_utf8(b.clone()).map_err(|_| protocol(script, "job id is not UTF-8"))
        }
        other => Err(protocol(script, format!("string expected, got {other:?}"))),
    }
}

fn int_array(script: &'static str, v: Value) -> Result<Vec<i64>, QueueError> {
    match v {
        Value::Array(items) => items.iter().map(|i| as_i64(script, i)).collect(),
        other => Err(protocol(script, format!("array expected, got {other:?}"))),
    }
}

impl<J: Job> Queue<J> {
    /// A queue on `pool` with settings `cfg`. Does not touch Redis; call
    /// [`check_eviction_policy`] once at start-up.
    pub fn new(pool: Pool, cfg: QueueConfig) -> Self {
        let keys = QueueKeys::new(&cfg.prefix, &cfg.name);
        Self {
            inner: Arc::new(Inner {
                pool,
                holder: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()),
                keys,
                cfg,
                scripts: Scripts::load(),
            }),
            _job: PhantomData,
        }
    }

    /// Its name, e.g. `campaign-dialer` (keys `bull:{<name>}:…`).
    pub fn name(&self) -> &str {
        &self.inner.cfg.name
    }

    /// The holder id its leases are taken under (`<pid>-<random hex>`): one per
    /// [`Queue::new`], shared by its clones. Its heartbeat is the deadline of its latest
    /// reserve or renewal.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// The queue's Redis keys.
    pub fn keys(&self) -> &QueueKeys {
        &self.inner.keys
    }

    /// The settings it was opened with: name, prefix, lease and stall limit.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.cfg
    }

    fn new_envelope(job: &NewJob<J>, now_ms: i64) -> Envelope<&J> {
        Envelope {
            id: job
                .id
                .clone()
                .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>())),
            kind: job.payload.kind().to_owned(),
            payload: &job.payload,
            attempt: 0,
            enqueued_ms: now_ms,
            due_ms: job.due_ms,
            outages: 0,
        }
    }

    /// Pushes the 4 arguments (id, due, bytes, mode) of one new job onto `args`.
    fn push_job_args(
        args: &mut Vec<Vec<u8>>,
        job: &NewJob<J>,
        now_ms: i64,
    ) -> Result<(), QueueError> {
        let env = Self::new_envelope(job, now_ms);
        let bytes = rmp_serde::to_vec_named(&env).map_err(|source| QueueError::Encode {
            id: env.id.clone(),
            source,
        })?;
        args.push(env.id.into_bytes());
        args.push(job.due_ms.to_string().into_bytes());
        args.push(bytes);
        args.push(match job.dedup {
            Dedup::Skip => b"S".to_vec(),
            Dedup::KeepEarliest => b"E".to_vec(),
        });
        Ok(())
    }

    /// Enqueues `jobs` in one round trip (product §3). `now_ms` is recorded as their enqueue
    /// time. Returns one outcome per job, in order.
    ///
    /// Errors: encoding or Redis failures; on error nothing is enqueued.
    pub async fn enqueue(
        &self,
        jobs: &[NewJob<J>],
        now_ms: i64,
    ) -> Result<Vec<EnqueueOutcome>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.inner.keys;
        let mut args = Vec::with_capacity(1 + 4 * jobs.len());
        args.push(k.wake.clone().into_bytes());
        for job in jobs {
            Self::push_job_args(&mut args, job, now_ms)?;
        }
        let mut conn = self.inner.pool.get().await?;
        let reply: Value = self
            .inner
            .scripts
            .enqueue
            .key(&k.scheduled)
            .key(&k.active)
            .key(&k.jobs)
            .arg(args)
            .invoke_async(&mut *conn)
            .await?;
        int_array("enqueue", reply)?
            .into_iter()
            .map(|r| match r {
                1 => Ok(EnqueueOutcome::Added),
                0 => Ok(EnqueueOutcome::Duplicate),
                2 => Ok(EnqueueOutcome::MovedEarlier),
                other => Err(protocol("enqueue", format!("unknown result {other}"))),
            })
            .collect()
    }

    /// Leases up to `max` jobs due at `now_ms` to this queue's [`Queue::holder`], earliest
    /// first, in one round trip, after returning expired leases to waiting (or to the
    /// dead-letter set past `max_stalls`, counting only leases that outlived a live holder),
    /// and records the holder's heartbeat (`now_ms + lease_ms`).
    /// Undecodable envelopes are dead-lettered with the decode error and not returned.
    ///
    /// Errors: Redis failures (nothing is leased then).
    pub async fn reserve(&self, max: usize, now_ms: i64) -> Result<Reservation<J>, QueueError> {
        let k = &self.inner.keys;
        let cfg = &self.inner.cfg;
        let mut conn = self.inner.pool.get().await?;
        let mut inv = self.inner.scripts.reserve.prepare_invoke();
        for key in k.state_keys() {
            inv.key(key);
        }
        inv.key(&k.lease_seq).key(&k.holders);
        inv.arg(now_ms)
            .arg(cfg.lease_ms)
            .arg(max.max(1))
            .arg(cfg.max_stalls)
            .arg(&self.inner.holder);
        let reply: Value = inv.invoke_async(&mut *conn).await?;
        drop(conn);
        let Value::Array(items) = reply else {
            return Err(protocol("reserve", "array expected"));
        };
        if items.len() < 5 || (items.len() - 5) % 3 != 0 {
            return Err(protocol("reserve", format!("{} items", items.len())));
        }
        let deadline = as_i64("reserve", &items[0])?;
        let next = as_i64("reserve", &items[1])?;
        let recovered = u64::try_from(as_i64("reserve", &items[2])?).unwrap_or(0);
        let mut dead_lettered = u64::try_from(as_i64("reserve", &items[3])?).unwrap_or(0);
        let first_token = as_i64("reserve", &items[4])?;
        let mut jobs = Vec::with_capacity((items.len() - 5) / 3);
        let mut corrupt = Vec::new();
        for (i, chunk) in items[5..].chunks_exact(3).enumerate() {
            let lease = first_token + i as i64;
            let id = as_string("reserve", &chunk[0])?;
            let scheduled_ms = as_i64("reserve", &chunk[1])?;
            let decoded = match &chunk[2] {
                Value::BulkString(bytes) => rmp_serde::from_slice::<Envelope<J>>(bytes)
                    .map_err(|e| format!("corrupt payload: {e}")),
                _ => Err("corrupt payload: envelope missing".to_owned()),
            };
            match decoded {
                Ok(envelope) => jobs.push(Reserved {
                    envelope,
                    lease,
                    deadline_ms: deadline,
                    scheduled_ms,
                }),
                Err(error) => corrupt.push(Settle::DeadLetter { id, lease, error }),
            }
        }
        if !corrupt.is_empty() {
            tracing::warn!(queue = %cfg.name, count = corrupt.len(), "dead-lettering undecodable jobs");
            dead_lettered += self
                .settle(corrupt, now_ms)
                .await?
                .into_iter()
                .filter(|ok| *ok)
                .count() as u64;
        }
        Ok(Reservation {
            jobs,
            next_due_ms: (next >= 0).then_some(next),
            recovered,
            dead_lettered,
        })
    }

    /// Settles a batch of leased jobs in one round trip. Returns, per item, whether its lease
    /// was still held; an item whose lease was lost (expired and re-leased elsewhere) changes
    /// nothing, and its successors are not enqueued.
    ///
    /// Errors: encoding or Redis failures; on error nothing is settled.
    pub async fn settle(
        &self,
        items: Vec<Settle<J>>,
        now_ms: i64,
    ) -> Result<Vec<bool>, QueueError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.inner.keys;
        let mut args: Vec<Vec<u8>> =
            vec![now_ms.to_string().into_bytes(), k.wake.clone().into_bytes()];
        for item in &items {
            match item {
                Settle::Ack {
                    id,
                    lease,
                    successors,
                    withdraw,
                } => {
                    args.extend([
                        b"A".to_vec(),
                        id.clone().into_bytes(),
                        lease.to_string().into_bytes(),
                    ]);
                    args.push(successors.len().to_string().into_bytes());
                    for job in successors {
                        Self::push_job_args(&mut args, job, now_ms)?;
                    }
                    args.push(withdraw.len().to_string().into_bytes());
                    args.extend(withdraw.iter().map(|w| w.clone().into_bytes()));
                }
                Settle::Retry {
                    lease,
                    envelope,
                    due_ms,
                } => {
                    args.extend([
                        b"R".to_vec(),
                        envelope.id.clone().into_bytes(),
                        lease.to_string().into_bytes(),
                    ]);
                    args.extend([due_ms.to_string().into_bytes(), encode(envelope)?]);
                }
                Settle::DeadLetter { id, lease, error } => {
                    args.extend([
                        b"D".to_vec(),
                        id.clone().into_bytes(),
                        lease.to_string().into_bytes(),
                    ]);
                    args.extend([error.clone().into_bytes(), Vec::new()]);
                }
                Settle::HandBack { id, lease } => {
                    args.extend([
                        b"B".to_vec(),
                        id.clone().into_bytes(),
                        lease.to_string().into_bytes(),
                    ]);
                }
            }
        }
        let mut conn = self.inner.pool.get().await?;
        let mut inv = self.inner.scripts.settle.prepare_invoke();
        for key in k.state_keys() {
            inv.key(key);
        }
        inv.arg(args);
        let reply: Value = inv.invoke_async(&mut *conn).await?;
        let results = int_array("settle", reply)?;
        if results.len() != items.len() {
            return Err(protocol(
                "settle",
                format!("{} results for {} items", results.len(), items.len()),
            ));
        }
        Ok(results.into_iter().map(|r| r == 1).collect())
    }

    /// Renews leases `(id, lease token)` to expire at `now_ms + lease_ms`, and the holder's
    /// heartbeat with them. Returns the new deadline and, per job, whether it was still
    /// held. Tokens do not change.
    ///
    /// Errors: Redis failures.
    pub async fn extend(
        &self,
        leases: &[(String, i64)],
        now_ms: i64,
    ) -> Result<(i64, Vec<bool>), QueueError> {
        let deadline = now_ms + self.inner.cfg.lease_ms;
        if leases.is_empty() {
            return Ok((deadline, Vec::new()));
        }
        let mut args: Vec<Vec<u8>> = vec![
            deadline.to_string().into_bytes(),
            self.inner.holder.clone().into_bytes(),
        ];
        for (id, lease) in leases {
            args.push(id.clone().into_bytes());
            args.push(lease.to_string().into_bytes());
        }
        let mut conn = self.inner.pool.get().await?;
        let reply: Value = self
            .inner
            .scripts
            .extend
            .key(&self.inner.keys.active)
            .key(&self.inner.keys.leases)
            .key(&self.inner.keys.holders)
            .arg(args)
            .invoke_async(&mut *conn)
            .await?;
        Ok((
            deadline,
            int_array("extend", reply)?
                .into_iter()
                .map(|r| r == 1)
                .collect(),
        ))
    }

    /// Depths of the queue at `now_ms`.
    ///
    /// Errors: Redis failures.
    pub async fn counts(&self, now_ms: i64) -> Result<QueueCounts, QueueError> {
        let k = &self.inner.keys;
        let mut conn = self.inner.pool.get().await?;
        let (waiting, delayed, active, dead, head): (u64, u64, u64, u64, Vec<(String, f64)>) =
            redis::pipe()
                .zcount(&k.scheduled, "-inf", now_ms)
                .zcount(&k.scheduled, format!("({now_ms}"), "+inf")
                .zcard(&k.active)
                .zcard(&k.dead)
                .zrange_withscores(&k.scheduled, 0, 0)
                .query_async(&mut *conn)
                .await?;
        Ok(QueueCounts {
            waiting,
            delayed,
            active,
            dead,
            oldest_due_ms: head.first().map(|(_, s)| s.round() as i64),
        })
    }

    /// The newest `limit` dead letters, newest first.
    ///
    /// Errors: Redis failures.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let k = &self.inner.keys;
        let mut conn = self.inner.pool.get().await?;
        let stop = isize::try_from(limit).unwrap_or(isize::MAX).max(1) - 1;
        let entries: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&k.dead)
            .arg(0)
            .arg(stop)
            .arg("REV")
            .arg("WITHSCORES")
            .query_async(&mut *conn)
            .await?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&String> = entries.iter().map(|(id, _)| id).collect();
        let (errors, bytes): (Vec<Option<String>>, Vec<Option<Vec<u8>>>) = redis::pipe()
            .cmd("HMGET")
            .arg(&k.dead_errors)
            .arg(&ids)
            .cmd("HMGET")
            .arg(&k.dead_jobs)
            .arg(&ids)
            .query_async(&mut *conn)
            .await?;
        Ok(entries
            .iter()
            .zip(errors)
            .zip(bytes)
            .map(|(((id, failed), error), raw)| {
                let env = raw.and_then(|b| {
                    rmp_serde::from_slice::<Envelope<serde::de::IgnoredAny>>(&b).ok()
                });
                DeadLetter {
                    id: id.clone(),
                    failed_ms: failed.round() as i64,
                    error: error.unwrap_or_default(),
                    kind: env.as_ref().map(|e| e.kind.clone()),
                    attempt: env.map(|e| e.attempt),
                }
            })
            .collect())
    }

    /// Moves dead letter `id` back to waiting with its attempt count reset (operator retry).
    /// Returns `Ok(false)` when there is no such dead letter or a live job has that id.
    ///
    /// Errors: Redis failures.
    pub async fn requeue_dead(&self, id: &str, now_ms: i64) -> Result<bool, QueueError> {
        let k = &self.inner.keys;
        let mut conn = self.inner.pool.get().await?;
        let raw: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(&k.dead_jobs)
            .arg(id)
            .query_async(&mut *conn)
            .await?;
        // Reset the attempt count when the envelope decodes; keep the bytes as they are if not.
        let bytes = match raw.as_deref().map(rmp_serde::from_slice::<Envelope<J>>) {
            Some(Ok(mut env)) => {
                env.attempt = 0;
                encode(&env)?
            }
            _ => Vec::new(),
        };
        let r: i64 = self
            .inner
            .scripts
            .requeue_dead
            .key(&k.scheduled)
            .key(&k.active)
            .key(&k.jobs)
            .key(&k.dead)
            .key(&k.dead_jobs)
            .key(&k.dead_errors)
            .arg(now_ms)
            .arg(id)
            .arg(bytes)
            .invoke_async(&mut *conn)
            .await?;
        Ok(r == 1)
    }

    /// Subscribes to this queue's wake-ups through `client` (a dedicated connection).
    ///
    /// Errors: Redis failures while connecting or subscribing.
    pub async fn subscribe_wakeups(
        &self,
        client: &redis::Client,
    ) -> Result<WakeSubscription, QueueError> {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&self.inner.keys.wake).await?;
        let stream = pubsub
            .into_on_message()
            .map(|msg| msg.get_payload::<i64>().ok());
        Ok(WakeSubscription {
            stream: Box::pin(stream),
        })
    }
}

/// A stream of wake-ups: the due time (ms) of each job that became the queue's earliest.
pub struct WakeSubscription {
    stream: Pin<Box<dyn Stream<Item = Option<i64>> + Send>>,
}

impl std::fmt::Debug for WakeSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WakeSubscription")
    }
}

impl WakeSubscription {
    /// The next wake-up's due time (ms; `None` inside `Some` if the payload was not a
    /// number). `None` when the connection closed.
    pub async fn next(&mut self) -> Option<Option<i64>> {
        self.stream.next().await
    }
}
