//! The worker loop shared by every queue consumer (product §3, STYLE habit 3).
//!
//! One fetch loop per process and queue reserves as many due jobs as it has free handler
//! slots — one round trip per batch — and runs them concurrently. Finished jobs are settled
//! by a flusher that takes everything finished since its last round trip and settles it in
//! one script call (group commit), so under load acks are batched and at low load they are
//! immediate. While jobs run, their leases are renewed every third of the lease.
//!
//! With nothing (more) due — a reserve that returned fewer jobs than it asked for took
//! everything due — the loop sleeps until the earliest due time reported by the reserve
//! (a client-side timer, millisecond-precise) or until a pub/sub wake-up says an earlier job
//! arrived — never a fixed poll, never a blocking pop's timeout (product §3).
//!
//! Tests drive a worker deterministically with [`Worker::try_execute_once`] instead.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use outdial_clock::Clock;
use outdial_queue::{Envelope, Job, NewJob, Queue, QueueError, Reserved, Settle};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// How a worker runs jobs: concurrency, batching, retries, renewals, shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Handlers running at once.
    pub concurrency: usize,
    /// Largest batch reserved or settled in one round trip.
    pub batch_max: usize,
    /// Runs of a failing job before it is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay, ms; doubles with each attempt.
    pub backoff_base_ms: i64,
    /// Longest retry delay, ms.
    pub backoff_max_ms: i64,
    /// First wait after an outage ([`JobError::Outage`]), ms; doubles with each outage in a
    /// row, with jitter. Outages do not count toward [`Self::max_attempts`].
    pub outage_backoff_base_ms: i64,
    /// Longest wait between runs during an outage, ms: the most a job is late once the
    /// dependency is back.
    pub outage_backoff_max_ms: i64,
    /// Lease renewal period, ms (a third of the queue's lease).
    pub renew_every_ms: i64,
    /// Longest idle sleep without a wake-up, ms: a safety net for a lost pub/sub message.
    pub idle_max_ms: i64,
    /// How long shutdown waits for running handlers before handing their jobs back, ms.
    pub shutdown_grace_ms: u64,
    /// How often queue depth gauges are refreshed, ms.
    pub depth_every_ms: u64,
    /// Backlog batching: while more jobs are due than there are free handlers (the last
    /// reserve filled every free slot), a reserve waits up to this long, ms, for at least
    /// [`Self::gather_min`] handlers to be free, so it leases several jobs in one round trip
    /// instead of one job per finished handler. Never applies when the queue is keeping up,
    /// so it adds nothing to on-time jobs (pacing). 0 disables it.
    pub gather_ms: u64,
    /// Free handlers a backlogged reserve waits for (see [`Self::gather_ms`]).
    pub gather_min: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 5,
            batch_max: 64,
            max_attempts: 5,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            outage_backoff_base_ms: 200,
            outage_backoff_max_ms: 2_000,
            renew_every_ms: 1_000,
            idle_max_ms: 5_000,
            shutdown_grace_ms: 20_000,
            depth_every_ms: 5_000,
            gather_ms: 1,
            gather_min: 4,
        }
    }
}

impl WorkerConfig {
    /// Retry delay after failed run `attempt` (0-based): `base × 2^attempt`, capped.
    pub fn backoff_ms(&self, attempt: u32) -> i64 {
        let factor = 1_i64.checked_shl(attempt.min(30)).unwrap_or(i64::MAX);
        self.backoff_base_ms
            .saturating_mul(factor)
            .min(self.backoff_max_ms)
    }

    /// Wait after outage `n` in a row (0-based), ms: `outage_backoff_base_ms × 2^n` capped
    /// at `outage_backoff_max_ms`, then scaled by `jitter` (clamped to 0.5–1.0, "equal
    /// jitter") so jobs that failed together do not come back together.
    pub fn outage_backoff_ms(&self, n: u32, jitter: f64) -> i64 {
        let factor = 1_i64.checked_shl(n.min(30)).unwrap_or(i64::MAX);
        let capped = self
            .outage_backoff_base_ms
            .saturating_mul(factor)
            .min(self.outage_backoff_max_ms);
        (capped as f64 * jitter.clamp(0.5, 1.0)).round() as i64
    }
}

/// What a handler knows about the job it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    /// Its queue id: canonical (e.g. `tick:42`) or random.
    pub id: String,
    /// 0 on the first run.
    pub attempt: u32,
    /// Due time it was scheduled for, ms.
    pub scheduled_ms: i64,
    /// When it was reserved, ms.
    pub reserved_ms: i64,
}

/// A successful run: the jobs to enqueue, and the scheduled jobs to withdraw, atomically
/// with its ack.
#[derive(Debug, Clone, PartialEq)]
pub struct Done<J> {
    /// Enqueued in the same atomic step as the ack (e.g. the next tick).
    pub successors: Vec<NewJob<J>>,
    /// Ids of jobs of the same queue deleted in that step if they are still scheduled (e.g.
    /// a completed call's timeout); see [`Settle::Ack`].
    pub withdraw: Vec<String>,
}

impl<J> Done<J> {
    /// Nothing follows.
    pub fn nothing() -> Self {
        Self::then(Vec::new())
    }

    /// Followed by `jobs`.
    pub fn then(jobs: Vec<NewJob<J>>) -> Self {
        Self {
            successors: jobs,
            withdraw: Vec::new(),
        }
    }

    /// Also withdraws the scheduled job `id` (same queue) with the ack.
    #[must_use]
    pub fn withdrawing(mut self, id: String) -> Self {
        self.withdraw.push(id);
        self
    }
}

/// Any error a handler fails with, kept whole so its cause chain reaches the logs and the
/// dead letter.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed run: what the queue should do with the job, and why.
///
/// There is no blanket conversion from every error: a handler says which failures are
/// permanent. Crates whose errors a handler meets provide `From` impls that decide by kind
/// (queue errors here; store and channel errors behind their `worker` features), so `?`
/// retries an outage and dead-letters a missing row.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Try again later: after `after_ms`, or after the exponential backoff when `None`.
    /// Dead-lettered once the attempts are used up.
    #[error("retryable: {source}")]
    Retry {
        /// what went wrong
        #[source]
        source: BoxError,
        /// explicit delay, ms
        after_ms: Option<i64>,
    },
    /// Retrying cannot help (a malformed payload, a missing row): dead-letter now.
    #[error("permanent: {source}")]
    Abort {
        /// what went wrong
        #[source]
        source: BoxError,
    },
    /// A dependency is unreachable (Postgres or Redis down, a pool timeout, a connection
    /// reset): nothing is wrong with the job. It runs again after the outage backoff
    /// ([`WorkerConfig::outage_backoff_ms`]), for as long as the outage lasts; its attempt
    /// count does not change, so it is never dead-lettered for it (product §3 "Outages").
    #[error("outage: {source}")]
    Outage {
        /// what went wrong
        #[source]
        source: BoxError,
    },
}

impl JobError {
    /// A retryable failure caused by `error` (an error value, or a message).
    pub fn retry(error: impl Into<BoxError>) -> Self {
        Self::Retry {
            source: error.into(),
            after_ms: None,
        }
    }

    /// A permanent failure caused by `error` (an error value, or a message).
    pub fn abort(error: impl Into<BoxError>) -> Self {
        Self::Abort {
            source: error.into(),
        }
    }

    /// An outage caused by `error`: wait and run again, without using an attempt.
    pub fn outage(error: impl Into<BoxError>) -> Self {
        Self::Outage {
            source: error.into(),
        }
    }

    /// The cause with its whole source chain on one line (`cause: cause: …`), as logs and
    /// dead letters show it.
    pub fn cause_chain(&self) -> String {
        let (Self::Retry { source, .. } | Self::Abort { source } | Self::Outage { source }) = self;
        let mut text = source.to_string();
        let mut next = source.source();
        while let Some(s) = next {
            text.push_str(": ");
            text.push_str(&s.to_string());
            next = s.source();
        }
        text
    }
}

/// Queue failures: Redis unreachable or its pool exhausted is an outage
/// ([`QueueError::is_outage`]); another Redis error or an evicting Redis is retried; a job
/// that cannot be encoded or a script reply that breaks its documented shape will not change
/// by retrying (abort).
impl From<QueueError> for JobError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Encode { .. } | QueueError::Protocol { .. } => Self::abort(e),
            _ if e.is_outage() => Self::outage(e),
            QueueError::Redis(_) | QueueError::Pool(_) | QueueError::EvictionPolicy(_) => {
                Self::retry(e)
            }
        }
    }
}

/// Runs jobs of type `J`.
#[async_trait]
pub trait Handler<J: Job>: Send + Sync + 'static {
    /// Runs one job. Must be idempotent: a job can run again after a crash or a lost lease.
    async fn handle(&self, job: J, ctx: JobContext) -> Result<Done<J>, JobError>;
}

/// Result of one [`Worker::try_execute_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A job ran.
    Processed {
        /// its queue id (e.g. `tick:42`)
        id: String,
        /// its [`Job::kind`], e.g. `voice_tick`
        kind: String,
        /// `true` when it succeeded
        ok: bool,
    },
    /// Nothing was due.
    Empty {
        /// when something next becomes due, ms
        next_due_ms: Option<i64>,
    },
}

/// A worker: a queue, a handler and a clock.
pub struct Worker<J: Job, H: Handler<J>> {
    queue: Queue<J>,
    handler: Arc<H>,
    clock: Arc<dyn Clock>,
    cfg: WorkerConfig,
}

impl<J: Job, H: Handler<J>> fmt::Debug for Worker<J, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue.name())
            .field("cfg", &self.cfg)
            .finish()
    }
}

fn settle_id<J>(s: &Settle<J>) -> &str {
    match s {
        Settle::Ack { id, .. } | Settle::DeadLetter { id, .. } | Settle::HandBack { id, .. } => id,
        Settle::Retry { envelope, .. } => &envelope.id,
    }
}

/// Turns a handler result into the queue action (ack with successors, retry with backoff, or
/// dead letter).
fn settlement<J: Job>(
    cfg: &WorkerConfig,
    envelope: Envelope<J>,
    lease: i64,
    result: Result<Done<J>, JobError>,
    now_ms: i64,
) -> Settle<J> {
    match result {
        Ok(done) => Settle::Ack {
            id: envelope.id,
            lease,
            successors: done.successors,
            withdraw: done.withdraw,
        },
        Err(e) => {
            let error = e.cause_chain();
            match e {
                JobError::Outage { .. } => {
                    let delay = cfg.outage_backoff_ms(envelope.outages, rand::random::<f64>());
                    let mut next = envelope;
                    next.outages = next.outages.saturating_add(1);
                    Settle::Retry {
                        lease,
                        envelope: next,
                        due_ms: now_ms + delay,
                    }
                }
                JobError::Abort { .. } => Settle::DeadLetter {
                    id: envelope.id,
                    lease,
                    error,
                },
                JobError::Retry { .. } if envelope.attempt + 1 >= cfg.max_attempts => {
                    let error = format!("gave up after {} attempts: {error}", envelope.attempt + 1);
                    Settle::DeadLetter {
                        id: envelope.id,
                        lease,
                        error,
                    }
                }
                JobError::Retry { after_ms, .. } => {
                    let delay = after_ms.unwrap_or_else(|| cfg.backoff_ms(envelope.attempt));
                    let mut next = envelope;
                    next.attempt += 1;
                    Settle::Retry {
                        lease,
                        envelope: next,
                        due_ms: now_ms + delay,
                    }
                }
            }
        }
    }
}

fn result_label<J>(s: &Settle<J>) -> &'static str {
    match s {
        Settle::Ack { .. } => "ok",
        Settle::Retry { envelope, .. } if envelope.outages > 0 => "outage",
        Settle::Retry { .. } => "retry",
        Settle::DeadLetter { .. } => "dead",
        Settle::HandBack { .. } => "handed_back",
    }
}

impl<J: Job, H: Handler<J>> Worker<J, H> {
    /// A worker for `queue` running `handler`.
    pub fn new(queue: Queue<J>, handler: Arc<H>, clock: Arc<dyn Clock>, cfg: WorkerConfig) -> Self {
        Self {
            queue,
            handler,
            clock,
            cfg,
        }
    }

    /// The queue it reserves jobs from.
    pub fn queue(&self) -> &Queue<J> {
        &self.queue
    }

    /// Runs one job due now (by the worker's clock), if any, and settles it — the
    /// single-step function tests use to drive the fleet deterministically.
    ///
    /// Errors: Redis failures.
    pub async fn try_execute_once(&self) -> Result<Outcome, QueueError> {
        let now = self.clock.now_ms();
        let reservation = self.queue.reserve(1, now).await?;
        let Some(job) = reservation.jobs.into_iter().next() else {
            return Ok(Outcome::Empty {
                next_due_ms: reservation.next_due_ms,
            });
        };
        let (id, kind) = (job.envelope.id.clone(), job.envelope.kind.clone());
        let settle = run_one(
            &self.handler,
            &self.cfg,
            &*self.clock,
            self.queue.name(),
            job,
            now,
        )
        .await;
        let ok = matches!(settle, Settle::Ack { .. });
        self.queue.settle(vec![settle], self.clock.now_ms()).await?;
        Ok(Outcome::Processed { id, kind, ok })
    }

    /// Runs jobs due now until none is due or `max` ran. Returns how many ran.
    ///
    /// Errors: Redis failures.
    pub async fn drain(&self, max: usize) -> Result<usize, QueueError> {
        let mut n = 0;
        while n < max {
            match self.try_execute_once().await? {
                Outcome::Processed { .. } => n += 1,
                Outcome::Empty { .. } => break,
            }
        }
        Ok(n)
    }

    /// Runs until `shutdown` resolves: reserves batches, runs up to `concurrency` handlers at
    /// once, settles in batches, renews leases, and on shutdown stops reserving, lets running
    /// handlers finish within the grace period and hands back what is left. `wake_client`
    /// (a Redis client for a dedicated pub/sub connection) enables early wake-ups; without it
    /// the worker polls at most every `idle_max_ms`.
    ///
    /// Errors: none once started; Redis failures are logged and retried.
    pub async fn run(
        self,
        wake_client: Option<redis::Client>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let queue_name = self.queue.name().to_owned();
        let sem = Arc::new(Semaphore::new(self.cfg.concurrency));
        let inflight: Arc<Mutex<HashMap<String, i64>>> = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = mpsc::unbounded_channel::<Settle<J>>();
        // A watch, not a Notify: a loop busy with Redis when shutdown comes must still see
        // it at its next wait (`Notify::notify_waiters` only wakes current waiters, and a
        // missed one left `renewer.await` hanging forever).
        let (stop_tx, stop) = watch::channel(false);
        let wake = Arc::new(Notify::new());

        let flusher = tokio::spawn(flush_loop(
            self.queue.clone(),
            Arc::clone(&self.clock),
            rx,
            Arc::clone(&inflight),
            self.cfg.batch_max,
        ));
        let renewer = tokio::spawn(renew_loop(
            self.queue.clone(),
            Arc::clone(&self.clock),
            Arc::clone(&inflight),
            self.cfg.renew_every_ms,
            stop.clone(),
        ));
        let depth = tokio::spawn(depth_loop(
            self.queue.clone(),
            Arc::clone(&self.clock),
            self.cfg.depth_every_ms,
            stop.clone(),
        ));
        let waker = wake_client.map(|c| {
            tokio::spawn(wake_loop(
                self.queue.clone(),
                c,
                Arc::clone(&wake),
                stop.clone(),
            ))
        });

        let mut handlers = JoinSet::new();
        tokio::pin!(shutdown);
        tracing::info!(queue = %queue_name, concurrency = self.cfg.concurrency, "worker started");
        // The last reserve filled every free handler: more jobs may be due than handlers.
        let mut backlogged = false;
        loop {
            while handlers.try_join_next().is_some() {}
            let permit = tokio::select! {
                p = Arc::clone(&sem).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                () = &mut shutdown => break,
            };
            let gather_min = self.cfg.gather_min.min(self.cfg.concurrency);
            if backlogged && self.cfg.gather_ms > 0 && 1 + sem.available_permits() < gather_min {
                // Each finished handler is a chance to stop waiting; the deadline bounds it.
                let until = tokio::time::Instant::now() + Duration::from_millis(self.cfg.gather_ms);
                let mut stopping = false;
                while 1 + sem.available_permits() < gather_min && !handlers.is_empty() {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => break,
                        _ = handlers.join_next() => {}
                        () = &mut shutdown => { stopping = true; break }
                    }
                }
                if stopping {
                    break;
                }
            }
            let want = (1 + sem.available_permits()).min(self.cfg.batch_max);
            let now = self.clock.now_ms();
            let reservation = match self.queue.reserve(want, now).await {
                Ok(r) => r,
                Err(e) => {
                    drop(permit);
                    tracing::warn!(queue = %queue_name, error = %e, "reserve failed; retrying in 1 s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            };
            if reservation.recovered > 0 {
                metrics::counter!("outdial_queue_recovered_total", "queue" => queue_name.clone())
                    .increment(reservation.recovered);
            }
            if reservation.dead_lettered > 0 {
                metrics::counter!("outdial_queue_dead_lettered_total", "queue" => queue_name.clone()).increment(reservation.dead_lettered);
            }
            // Fewer jobs than asked for: nothing else was due, so the next reserve waits for
            // the next due time or a wake-up instead of coming back empty at once (while the
            // queue keeps up, that empty round trip was one more script call per wave of
            // jobs; at saturation every reserve fills its slots and this never applies).
            let drained = reservation.jobs.len() < want;
            backlogged = !drained;
            let next_due_ms = reservation.next_due_ms;
            if reservation.jobs.is_empty() {
                drop(permit);
            } else {
                // One permit per job: the first taken above, the others free by construction
                // (only this loop takes permits).
                let mut permits = vec![permit];
                for _ in 1..reservation.jobs.len() {
                    match Arc::clone(&sem).try_acquire_owned() {
                        Ok(p) => permits.push(p),
                        Err(_) => break, // cannot happen: only this loop takes permits
                    }
                }
                self.spawn_jobs(
                    reservation.jobs,
                    permits,
                    &inflight,
                    &tx,
                    &mut handlers,
                    now,
                );
            }
            if drained {
                let wait_ms = next_due_ms.map_or(self.cfg.idle_max_ms, |due| {
                    (due - self.clock.now_ms()).clamp(0, self.cfg.idle_max_ms)
                });
                let deadline =
                    Instant::now() + Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
                tokio::select! {
                    () = tokio::time::sleep_until(deadline.into()) => {}
                    () = wake.notified() => {}
                    () = &mut shutdown => break,
                }
            }
        }

        tracing::info!(queue = %queue_name, running = handlers.len(), "worker stopping");
        let grace = Duration::from_millis(self.cfg.shutdown_grace_ms);
        let all_done = async { while handlers.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all_done).await.is_err() {
            tracing::warn!(queue = %queue_name, "grace period over; handing back unfinished jobs");
            handlers.abort_all();
            while handlers.join_next().await.is_some() {}
        }
        drop(tx);
        let _ = flusher.await;
        self.hand_back(&inflight).await;
        let _ = stop_tx.send(true);
        let _ = renewer.await;
        let _ = depth.await;
        if let Some(w) = waker {
            w.abort();
        }
        tracing::info!(queue = %queue_name, "worker stopped");
        Ok(())
    }

    /// Runs the reserved `jobs` on handler tasks, each holding one of `permits` (a handler
    /// slot) until it finishes: each job's lease recorded in `inflight` for renewal, its
    /// settle sent to the flusher through `tx`. `now` (ms) is when they were reserved.
    fn spawn_jobs(
        &self,
        jobs: Vec<Reserved<J>>,
        permits: Vec<OwnedSemaphorePermit>,
        inflight: &Mutex<HashMap<String, i64>>,
        tx: &mpsc::UnboundedSender<Settle<J>>,
        handlers: &mut JoinSet<()>,
        now: i64,
    ) {
        let queue_name = self.queue.name().to_owned();
        {
            let mut map = inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for job in &jobs {
                map.insert(job.envelope.id.clone(), job.lease);
            }
        }
        for (job, permit) in jobs.into_iter().zip(permits) {
            let lateness = (now - job.scheduled_ms).max(0) as f64 / 1_000.0;
            metrics::histogram!("outdial_queue_lateness_seconds", "queue" => queue_name.clone())
                .record(lateness);
            let (handler, cfg, clock, tx, name) = (
                Arc::clone(&self.handler),
                self.cfg.clone(),
                Arc::clone(&self.clock),
                tx.clone(),
                queue_name.clone(),
            );
            handlers.spawn(async move {
                let settle = run_one(&handler, &cfg, &*clock, &name, job, now).await;
                let _ = tx.send(settle);
                drop(permit);
            });
        }
    }

    /// At shutdown, hands the jobs still in `inflight` (their handlers did not finish within
    /// the grace period) back to the queue at once, instead of letting their leases expire.
    /// A failure is logged: the leases expire anyway.
    async fn hand_back(&self, inflight: &Mutex<HashMap<String, i64>>) {
        let left: Vec<Settle<J>> = inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .map(|(id, lease)| Settle::HandBack { id, lease })
            .collect();
        if left.is_empty() {
            return;
        }
        let (n, queue) = (left.len(), self.queue.name());
        if let Err(e) = self.queue.settle(left, self.clock.now_ms()).await {
            tracing::warn!(queue = %queue, error = %e, "hand-back failed; leases will expire instead");
        } else {
            tracing::info!(queue = %queue, jobs = n, "handed back unfinished jobs");
        }
    }
}

async fn run_one<J: Job, H: Handler<J>>(
    handler: &Arc<H>,
    cfg: &WorkerConfig,
    clock: &dyn Clock,
    queue: &str,
    job: Reserved<J>,
    reserved_ms: i64,
) -> Settle<J> {
    let Reserved {
        envelope,
        lease,
        scheduled_ms,
        ..
    } = job;
    let ctx = JobContext {
        id: envelope.id.clone(),
        attempt: envelope.attempt,
        scheduled_ms,
        reserved_ms,
    };
    let kind = envelope.kind.clone();
    let span = tracing::info_span!("job", queue, kind = %kind, job_id = %envelope.id, attempt = envelope.attempt);
    let started = Instant::now();
    let result = handler
        .handle(envelope.payload.clone(), ctx)
        .instrument(span.clone())
        .await;
    if let Err(e) = &result {
        span.in_scope(|| tracing::warn!(error = %e.cause_chain(), permanent = matches!(e, JobError::Abort { .. }), "job failed"));
    }
    let settle = settlement(cfg, envelope, lease, result, clock.now_ms());
    metrics::histogram!("outdial_queue_job_duration_seconds", "queue" => queue.to_owned(), "kind" => kind.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("outdial_queue_jobs_total", "queue" => queue.to_owned(), "kind" => kind, "result" => result_label(&settle)).increment(1);
    settle
}

async fn flush_loop<J: Job>(
    queue: Queue<J>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::UnboundedReceiver<Settle<J>>,
    inflight: Arc<Mutex<HashMap<String, i64>>>,
    batch_max: usize,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < batch_max.max(1) {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        let ids: Vec<String> = batch.iter().map(|s| settle_id(s).to_owned()).collect();
        let mut delay = Duration::from_millis(100);
        for round in 0.. {
            match queue.settle(batch.clone(), clock.now_ms()).await {
                Ok(held) => {
                    let lost = held.iter().filter(|h| !**h).count();
                    if lost > 0 {
                        tracing::warn!(queue = %queue.name(), lost, "leases lost before settle; another worker has those jobs");
                    }
                    break;
                }
                // Redis down: the results are kept and settled once it is back, however long
                // that takes (the renewer keeps the leases meanwhile).
                Err(e) if e.is_outage() || round < 8 => {
                    tracing::warn!(queue = %queue.name(), error = %e, "settle failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(queue = %queue.name(), error = %e, jobs = batch.len(), "settle abandoned; the jobs will be redelivered after their leases");
                    break;
                }
            }
        }
        let mut map = inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in ids {
            map.remove(&id);
        }
    }
}

async fn renew_loop<J: Job>(
    queue: Queue<J>,
    clock: Arc<dyn Clock>,
    inflight: Arc<Mutex<HashMap<String, i64>>>,
    every_ms: i64,
    mut stop: watch::Receiver<bool>,
) {
    let period = Duration::from_millis(u64::try_from(every_ms.max(50)).unwrap_or(50));
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // Lease tokens do not change when renewed, so nothing here races with settling.
        let leases: Vec<(String, i64)> = inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if leases.is_empty() {
            continue;
        }
        match queue.extend(&leases, clock.now_ms()).await {
            Ok((_, held)) => {
                let lost = held.iter().filter(|h| !**h).count();
                if lost > 0 {
                    tracing::debug!(queue = %queue.name(), lost, "leases no longer held at renewal (settled meanwhile, or expired)");
                }
            }
            Err(e) => tracing::warn!(queue = %queue.name(), error = %e, "lease renewal failed"),
        }
    }
}

async fn depth_loop<J: Job>(
    queue: Queue<J>,
    clock: Arc<dyn Clock>,
    every_ms: u64,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Ok(c) = queue.counts(clock.now_ms()).await {
            let name = queue.name().to_owned();
            for (state, v) in [
                ("waiting", c.waiting),
                ("delayed", c.delayed),
                ("active", c.active),
                ("dead", c.dead),
            ] {
                metrics::gauge!("outdial_queue_depth", "queue" => name.clone(), "state" => state)
                    .set(v as f64);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(every_ms.max(100))) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn wake_loop<J: Job>(
    queue: Queue<J>,
    client: redis::Client,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match queue.subscribe_wakeups(&client).await {
            Ok(mut sub) => {
                // A (re)subscription may have missed messages: look once.
                wake.notify_one();
                loop {
                    tokio::select! {
                        msg = sub.next() => match msg {
                            Some(_) => wake.notify_one(),
                            None => break,
                        },
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(queue = %queue.name(), error = %e, "wake-up subscription failed; retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let cfg = WorkerConfig {
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            ..WorkerConfig::default()
        };
        assert_eq!(
            [0, 1, 2, 5, 6, 40].map(|a| cfg.backoff_ms(a)),
            [1_000, 2_000, 4_000, 32_000, 60_000, 60_000]
        );
    }
}
