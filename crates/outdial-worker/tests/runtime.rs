//! The worker runtime against a real Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use outdial_clock::{Clock, ManualClock, SystemClock};
use outdial_queue::{Job, NewJob, Queue, QueueConfig};
use outdial_test_support::TestRedis;
use outdial_worker::{Done, Handler, JobContext, JobError, Outcome, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Task {
    Ok,
    FailTimes(u32),
    Abort,
    Chain(u32),
    Hold(u64),
    Block,
    /// Meets an outage on its first `n` runs (counted by the handler: outages leave the
    /// attempt count alone).
    OutageTimes(usize),
}

impl Job for Task {
    fn kind(&self) -> &'static str {
        "task"
    }
}

#[derive(Default)]
struct Recorder {
    runs: AtomicUsize,
    release: Notify,
}

#[async_trait]
impl Handler<Task> for Recorder {
    async fn handle(&self, job: Task, ctx: JobContext) -> Result<Done<Task>, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        match job {
            Task::Ok => Ok(Done::nothing()),
            Task::FailTimes(n) if ctx.attempt < n => Err(JobError::retry("provider 503")),
            Task::FailTimes(_) => Ok(Done::nothing()),
            Task::Abort => Err(JobError::abort("payload names no campaign")),
            Task::Chain(0) => Ok(Done::nothing()),
            Task::Chain(n) => Ok(Done::then(vec![
                NewJob::new(Task::Chain(n - 1), ctx.scheduled_ms + 10).with_id("chain"),
            ])),
            Task::Hold(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(Done::nothing())
            }
            Task::Block => {
                self.release.notified().await;
                Ok(Done::nothing())
            }
            Task::OutageTimes(n) if self.runs.load(Ordering::SeqCst) <= n => {
                assert_eq!(ctx.attempt, 0, "an outage must not use an attempt");
                Err(JobError::outage("postgres: pool timed out"))
            }
            Task::OutageTimes(_) => Ok(Done::nothing()),
        }
    }
}

fn queue(redis: &TestRedis, lease_ms: i64) -> Queue<Task> {
    let mut cfg = QueueConfig::new("runtime-test");
    cfg.prefix = redis.prefix.clone();
    cfg.lease_ms = lease_ms;
    Queue::new(redis.pool.clone(), cfg)
}

fn cfg() -> WorkerConfig {
    WorkerConfig {
        max_attempts: 3,
        backoff_base_ms: 1_000,
        backoff_max_ms: 60_000,
        ..WorkerConfig::default()
    }
}

const T0: i64 = 1_800_000_000_000;

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn retries_back_off_exponentially_then_dead_letter() {
    let redis = TestRedis::new().await;
    let clock = ManualClock::new(outdial_clock::ms_to_datetime(T0));
    let q = queue(&redis, 30_000);
    let handler = Arc::new(Recorder::default());
    let worker = Worker::new(
        q.clone(),
        Arc::clone(&handler),
        Arc::new(clock.clone()),
        cfg(),
    );
    q.enqueue(&[NewJob::new(Task::FailTimes(5), T0).with_id("flaky")], T0)
        .await
        .expect("enqueue");

    assert!(matches!(
        worker.try_execute_once().await.expect("run"),
        Outcome::Processed { ok: false, .. }
    ));
    // Attempt 0 failed → due after 1 s; attempt 1 failed → after 2 s; attempt 2 → dead.
    assert_eq!(
        worker.try_execute_once().await.expect("run"),
        Outcome::Empty {
            next_due_ms: Some(T0 + 1_000)
        }
    );
    clock.advance_ms(1_000);
    assert!(matches!(
        worker.try_execute_once().await.expect("run"),
        Outcome::Processed { ok: false, .. }
    ));
    assert_eq!(
        worker.try_execute_once().await.expect("run"),
        Outcome::Empty {
            next_due_ms: Some(T0 + 3_000)
        }
    );
    clock.advance_ms(2_000);
    assert!(matches!(
        worker.try_execute_once().await.expect("run"),
        Outcome::Processed { ok: false, .. }
    ));
    let dead = q.dead_letters(5).await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .error
            .contains("gave up after 3 attempts: provider 503"),
        "{}",
        dead[0].error
    );
    assert_eq!(handler.runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_outage_longer_than_the_backoff_schedule_dead_letters_nothing() {
    let redis = TestRedis::new().await;
    let clock = ManualClock::new(outdial_clock::ms_to_datetime(T0));
    let q = queue(&redis, 30_000);
    let handler = Arc::new(Recorder::default());
    let cfg = cfg();
    let worker = Worker::new(
        q.clone(),
        Arc::clone(&handler),
        Arc::new(clock.clone()),
        cfg.clone(),
    );
    // 40 outages in a row: far more than max_attempts (3) and past the cap of the
    // ordinary backoff schedule.
    q.enqueue(
        &[NewJob::new(Task::OutageTimes(40), T0).with_id("tick")],
        T0,
    )
    .await
    .expect("enqueue");
    let mut waits = Vec::new();
    for _ in 0..40 {
        assert!(matches!(
            worker.try_execute_once().await.expect("run"),
            Outcome::Processed { ok: false, .. }
        ));
        let Outcome::Empty {
            next_due_ms: Some(due),
        } = worker.try_execute_once().await.expect("run")
        else {
            panic!("the job must be scheduled again after an outage");
        };
        waits.push(due - clock.now_ms());
        clock.set(outdial_clock::ms_to_datetime(due));
    }
    assert!(matches!(
        worker.try_execute_once().await.expect("run"),
        Outcome::Processed { ok: true, .. }
    ));
    assert!(q.dead_letters(5).await.expect("dead").is_empty());
    assert_eq!(q.counts(clock.now_ms()).await.expect("counts").waiting, 0);
    // Waits grow from the base and never pass the cap; jitter keeps them within half of it.
    assert!(
        waits[0] >= cfg.outage_backoff_base_ms / 2 && waits[0] <= cfg.outage_backoff_base_ms,
        "{waits:?}"
    );
    assert!(
        waits.iter().all(|w| *w <= cfg.outage_backoff_max_ms),
        "{waits:?}"
    );
    assert!(
        waits[10..]
            .iter()
            .all(|w| *w >= cfg.outage_backoff_max_ms / 2),
        "{waits:?}"
    );
}

#[tokio::test]
async fn abort_dead_letters_at_once_and_success_leaves_nothing() {
    let redis = TestRedis::new().await;
    let clock = ManualClock::new(outdial_clock::ms_to_datetime(T0));
    let q = queue(&redis, 30_000);
    let worker = Worker::new(
        q.clone(),
        Arc::new(Recorder::default()),
        Arc::new(clock.clone()),
        cfg(),
    );
    q.enqueue(
        &[NewJob::new(Task::Abort, T0), NewJob::new(Task::Ok, T0)],
        T0,
    )
    .await
    .expect("enqueue");
    assert_eq!(worker.drain(10).await.expect("drain"), 2);
    let counts = q.counts(T0).await.expect("counts");
    assert_eq!(
        (counts.waiting, counts.delayed, counts.active, counts.dead),
        (0, 0, 0, 1)
    );
    q.enqueue(&[NewJob::new(Task::FailTimes(1), T0)], T0)
        .await
        .expect("enqueue");
    worker.drain(1).await.expect("fail once");
    clock.advance_ms(1_000);
    worker.drain(1).await.expect("succeed");
    assert_eq!(
        q.counts(T0 + 1_000).await.expect("counts").dead,
        1,
        "only the aborted one"
    );
}

#[tokio::test]
async fn running_worker_wakes_at_due_times_and_on_new_jobs_not_by_polling() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    let handler = Arc::new(Recorder::default());
    // idle_max 60 s: a worker that only polled would not run these within the test timeout.
    let worker = Worker::new(
        q.clone(),
        Arc::clone(&handler),
        Arc::new(SystemClock),
        WorkerConfig {
            idle_max_ms: 60_000,
            ..cfg()
        },
    );
    let stop = Arc::new(Notify::new());
    let stopper = Arc::clone(&stop);
    let running = tokio::spawn(worker.run(Some(redis.client.clone()), async move {
        stopper.notified().await;
    }));

    // Let the worker subscribe and go idle on the empty queue; then only a wake-up can start
    // it before its 60 s idle timer.
    let channel = q.keys().wake.clone();
    let mut conn = redis.pool.get().await.expect("redis");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let subs: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut *conn)
            .await
            .expect("NUMSUB");
        if subs.first().is_some_and(|(_, n)| *n > 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let now = SystemClock.now_ms();
    q.enqueue(&[NewJob::new(Task::Ok, now)], now)
        .await
        .expect("enqueue now");
    wait_until("first job", || handler.runs.load(Ordering::SeqCst) == 1).await;

    // A delayed job: the worker must wake on its own timer.
    let now = SystemClock.now_ms();
    q.enqueue(&[NewJob::new(Task::Ok, now + 300)], now)
        .await
        .expect("enqueue delayed");
    wait_until("delayed job", || handler.runs.load(Ordering::SeqCst) == 2).await;
    assert!(SystemClock.now_ms() >= now + 300, "never early");

    // A chain of self-enqueued successors runs through, one at a time.
    let now = SystemClock.now_ms();
    q.enqueue(&[NewJob::new(Task::Chain(20), now).with_id("chain")], now)
        .await
        .expect("chain");
    wait_until("chain", || handler.runs.load(Ordering::SeqCst) == 23).await;

    stop.notify_one();
    running.await.expect("join").expect("run");
    let c = q.counts(SystemClock.now_ms()).await.expect("counts");
    assert_eq!((c.waiting, c.delayed, c.active, c.dead), (0, 0, 0, 0));
}

#[tokio::test]
async fn leases_are_renewed_while_a_long_job_runs() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 1_000);
    let handler = Arc::new(Recorder::default());
    let fast_renew = WorkerConfig {
        renew_every_ms: 100,
        idle_max_ms: 50,
        ..cfg()
    };
    let stop = Arc::new(Notify::new());
    let mut runs = Vec::new();
    for _ in 0..2 {
        let w = Worker::new(
            q.clone(),
            Arc::clone(&handler),
            Arc::new(SystemClock),
            fast_renew.clone(),
        );
        let s = Arc::clone(&stop);
        runs.push(tokio::spawn(w.run(None, async move { s.notified().await })));
    }
    let now = SystemClock.now_ms();
    q.enqueue(&[NewJob::new(Task::Hold(3_000), now)], now)
        .await
        .expect("enqueue");
    let q2 = q.clone();
    let done = tokio::time::timeout(Duration::from_secs(10), async move {
        loop {
            let c = q2.counts(SystemClock.now_ms()).await.expect("counts");
            if c.waiting + c.delayed + c.active == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    done.expect("long job finished");
    assert_eq!(
        handler.runs.load(Ordering::SeqCst),
        1,
        "held 3 s on a 1 s lease without being redelivered"
    );
    stop.notify_waiters();
    for r in runs {
        r.await.expect("join").expect("run");
    }
}

#[tokio::test]
async fn shutdown_hands_back_unfinished_jobs() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    let handler = Arc::new(Recorder::default());
    let w = Worker::new(
        q.clone(),
        Arc::clone(&handler),
        Arc::new(SystemClock),
        WorkerConfig {
            shutdown_grace_ms: 100,
            idle_max_ms: 50,
            ..cfg()
        },
    );
    let stop = Arc::new(Notify::new());
    let s = Arc::clone(&stop);
    let run = tokio::spawn(w.run(None, async move { s.notified().await }));
    let now = SystemClock.now_ms();
    q.enqueue(&[NewJob::new(Task::Block, now).with_id("stuck")], now)
        .await
        .expect("enqueue");
    wait_until("job started", || handler.runs.load(Ordering::SeqCst) == 1).await;
    stop.notify_one();
    run.await.expect("join").expect("run");
    let r = q.reserve(1, SystemClock.now_ms()).await.expect("reserve");
    assert_eq!(r.jobs.len(), 1, "handed back, immediately available");
    assert_eq!(r.recovered, 0, "not via lease expiry");
    assert_eq!(r.jobs[0].envelope.id, "stuck");
}
