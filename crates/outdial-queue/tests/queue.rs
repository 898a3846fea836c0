//! Queue semantics against a real Redis, one random key prefix per test.

use outdial_queue::{Dedup, EnqueueOutcome, Envelope, Job, NewJob, Queue, QueueConfig, Settle};
use outdial_test_support::TestRedis;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ping {
    n: u32,
}

impl Job for Ping {
    fn kind(&self) -> &'static str {
        "ping"
    }
}

const T0: i64 = 1_800_000_000_000;

fn queue(redis: &TestRedis, lease_ms: i64) -> Queue<Ping> {
    let mut cfg = QueueConfig::new("test-queue");
    cfg.prefix = redis.prefix.clone();
    cfg.lease_ms = lease_ms;
    cfg.max_stalls = 2;
    Queue::new(redis.pool.clone(), cfg)
}

fn ack(r: &outdial_queue::Reserved<Ping>) -> Settle<Ping> {
    Settle::Ack {
        id: r.envelope.id.clone(),
        lease: r.lease,
        successors: vec![],
        withdraw: vec![],
    }
}

#[tokio::test]
async fn due_time_is_respected_to_the_millisecond() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    q.enqueue(&[NewJob::new(Ping { n: 1 }, T0 + 100)], T0)
        .await
        .expect("enqueue");

    let early = q.reserve(10, T0 + 99).await.expect("reserve");
    assert!(early.jobs.is_empty(), "handed out 1 ms early");
    assert_eq!(
        early.next_due_ms,
        Some(T0 + 100),
        "tells when to look again"
    );

    let on_time = q.reserve(10, T0 + 100).await.expect("reserve");
    assert_eq!(on_time.jobs.len(), 1);
    let job = &on_time.jobs[0];
    assert_eq!(job.envelope.payload, Ping { n: 1 });
    assert_eq!(
        (
            job.envelope.attempt,
            job.envelope.enqueued_ms,
            job.scheduled_ms
        ),
        (0, T0, T0 + 100)
    );
    assert_eq!(job.deadline_ms, T0 + 100 + 30_000);
}

#[tokio::test]
async fn jobs_come_out_earliest_due_first_in_batches() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    let jobs: Vec<_> = (0..1_000u32)
        .rev()
        .map(|n| NewJob::new(Ping { n }, T0 + i64::from(n)))
        .collect();
    assert!(
        q.enqueue(&jobs, T0)
            .await
            .expect("enqueue")
            .iter()
            .all(|o| *o == EnqueueOutcome::Added)
    );
    let first = q.reserve(600, T0 + 10_000).await.expect("reserve");
    let second = q.reserve(600, T0 + 10_000).await.expect("reserve");
    assert_eq!((first.jobs.len(), second.jobs.len()), (600, 400));
    let order: Vec<u32> = first
        .jobs
        .iter()
        .chain(&second.jobs)
        .map(|j| j.envelope.payload.n)
        .collect();
    assert_eq!(order, (0..1_000).collect::<Vec<_>>());
    let settled = q
        .settle(
            first.jobs.iter().chain(&second.jobs).map(ack).collect(),
            T0 + 10_001,
        )
        .await
        .expect("settle");
    assert!(settled.iter().all(|ok| *ok));
    assert!(
        redis
            .keys()
            .await
            .iter()
            .all(|k| k.ends_with(":lease-seq") || k.ends_with(":holders")),
        "ack leaves nothing behind: {:?}",
        redis.keys().await
    );
}

#[tokio::test]
async fn dedup_by_explicit_id_while_waiting_delayed_or_active() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    let job = |n, due| NewJob::new(Ping { n }, due).with_id("campaign:7");

    assert_eq!(
        q.enqueue(&[job(1, T0 + 500)], T0).await.expect("enqueue"),
        vec![EnqueueOutcome::Added]
    );
    assert_eq!(
        q.enqueue(&[job(2, T0 + 500)], T0).await.expect("enqueue"),
        vec![EnqueueOutcome::Duplicate],
        "delayed"
    );
    let r = q.reserve(1, T0 + 500).await.expect("reserve");
    assert_eq!(r.jobs[0].envelope.payload.n, 1, "the first one won");
    assert_eq!(
        q.enqueue(&[job(3, T0)], T0 + 500).await.expect("enqueue"),
        vec![EnqueueOutcome::Duplicate],
        "active"
    );
    q.settle(vec![ack(&r.jobs[0])], T0 + 501)
        .await
        .expect("settle");
    assert_eq!(
        q.enqueue(&[job(4, T0)], T0 + 501).await.expect("enqueue"),
        vec![EnqueueOutcome::Added],
        "after ack"
    );
    assert_eq!(
        q.enqueue(&[job(5, T0)], T0 + 501).await.expect("enqueue"),
        vec![EnqueueOutcome::Duplicate],
        "waiting"
    );
}

#[tokio::test]
async fn keep_earliest_moves_a_scheduled_job_forward_only() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    let job = |due| NewJob {
        id: Some("tick".into()),
        payload: Ping { n: 0 },
        due_ms: due,
        dedup: Dedup::KeepEarliest,
    };
    q.enqueue(&[job(T0 + 5_000)], T0).await.expect("enqueue");
    assert_eq!(
        q.enqueue(&[job(T0 + 9_000)], T0).await.expect("enqueue"),
        vec![EnqueueOutcome::Duplicate]
    );
    assert_eq!(
        q.enqueue(&[job(T0 + 1_000)], T0).await.expect("enqueue"),
        vec![EnqueueOutcome::MovedEarlier]
    );
    assert_eq!(
        q.reserve(5, T0 + 1_000).await.expect("reserve").jobs.len(),
        1
    );
}

#[tokio::test]
async fn ack_with_successor_hands_over_atomically() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    q.enqueue(&[NewJob::new(Ping { n: 1 }, T0).with_id("tick:1")], T0)
        .await
        .expect("enqueue");
    let r = q.reserve(1, T0).await.expect("reserve");
    let next = NewJob::new(Ping { n: 2 }, T0 + 50).with_id("tick:1");
    let ok = q
        .settle(
            vec![Settle::Ack {
                id: "tick:1".into(),
                lease: r.jobs[0].lease,
                successors: vec![next.clone()],
                withdraw: vec![],
            }],
            T0 + 1,
        )
        .await
        .expect("settle");
    assert_eq!(ok, vec![true]);
    let r2 = q.reserve(1, T0 + 50).await.expect("reserve");
    assert_eq!(r2.jobs[0].envelope.payload.n, 2);
    // A stale settle (old lease) neither acks nor enqueues its successors.
    let stale = q
        .settle(
            vec![Settle::Ack {
                id: "tick:1".into(),
                lease: r.jobs[0].lease,
                successors: vec![NewJob::new(Ping { n: 9 }, T0)],
                withdraw: vec![],
            }],
            T0 + 51,
        )
        .await
        .expect("settle");
    assert_eq!(stale, vec![false]);
    assert_eq!(q.counts(T0 + 51).await.expect("counts").active, 1);
    assert_eq!(q.counts(T0 + 51).await.expect("counts").waiting, 0);
}

#[tokio::test]
async fn ack_withdraws_scheduled_jobs_but_not_active_ones() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    let job = |n: u32, due: i64, id: &str| NewJob::new(Ping { n }, due).with_id(id);
    q.enqueue(
        &[
            job(1, T0, "status:1"),
            job(2, T0, "timeout:2"),
            job(3, T0 + 20_000, "timeout:1"),
            job(4, T0 + 20_000, "timeout:3"),
        ],
        T0,
    )
    .await
    .expect("enqueue");
    let r = q.reserve(2, T0).await.expect("reserve");
    assert_eq!(r.jobs.len(), 2, "status:1 and timeout:2 are leased");
    let status = r
        .jobs
        .iter()
        .find(|j| j.envelope.id == "status:1")
        .expect("status:1 leased");
    let settle = |lease: i64, withdraw: &[&str]| Settle::Ack {
        id: "status:1".into(),
        lease,
        successors: vec![],
        withdraw: withdraw.iter().map(|w| (*w).to_owned()).collect(),
    };
    let ok = q
        .settle(
            vec![settle(status.lease, &["timeout:1", "timeout:2", "unknown"])],
            T0 + 1,
        )
        .await
        .expect("settle");
    assert_eq!(ok, vec![true]);
    let counts = q.counts(T0 + 1).await.expect("counts");
    assert_eq!(
        (counts.delayed, counts.active),
        (1, 1),
        "timeout:1 withdrawn, timeout:3 untouched, the active timeout:2 left to its holder"
    );
    // A stale ack withdraws nothing.
    let stale = q
        .settle(vec![settle(status.lease, &["timeout:3"])], T0 + 2)
        .await
        .expect("settle");
    assert_eq!(stale, vec![false]);
    let later = q.reserve(10, T0 + 20_000).await.expect("reserve");
    let ids: Vec<&str> = later.jobs.iter().map(|j| j.envelope.id.as_str()).collect();
    assert_eq!(ids, vec!["timeout:3"], "the withdrawn job never runs");
}

#[tokio::test]
async fn expired_lease_returns_the_job_and_fences_the_old_worker() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 1_000);
    q.enqueue(&[NewJob::new(Ping { n: 1 }, T0)], T0)
        .await
        .expect("enqueue");
    let first = q.reserve(1, T0).await.expect("reserve");
    assert_eq!(
        first.next_due_ms,
        Some(T0 + 1_000),
        "an idle worker wakes for the lease deadline"
    );
    assert!(
        q.reserve(1, T0 + 999)
            .await
            .expect("reserve")
            .jobs
            .is_empty(),
        "lease still held"
    );

    let second = q.reserve(1, T0 + 1_000).await.expect("reserve");
    assert_eq!(second.recovered, 1);
    assert_eq!(second.jobs.len(), 1, "redelivered after the lease");
    assert_eq!(second.jobs[0].envelope.id, first.jobs[0].envelope.id);

    // The first worker wakes up late: its ack is refused, the new holder's is not.
    assert_eq!(
        q.settle(vec![ack(&first.jobs[0])], T0 + 1_001)
            .await
            .expect("settle"),
        vec![false]
    );
    assert_eq!(
        q.settle(vec![ack(&second.jobs[0])], T0 + 1_001)
            .await
            .expect("settle"),
        vec![true]
    );
    assert!(
        redis
            .keys()
            .await
            .iter()
            .all(|k| k.ends_with(":lease-seq") || k.ends_with(":holders")),
        "stall counter cleaned up: {:?}",
        redis.keys().await
    );
}

#[tokio::test]
async fn renewed_lease_is_not_recovered_and_its_token_still_settles() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 1_000);
    q.enqueue(&[NewJob::new(Ping { n: 1 }, T0)], T0)
        .await
        .expect("enqueue");
    let r = q.reserve(1, T0).await.expect("reserve");
    let (id, token) = (r.jobs[0].envelope.id.clone(), r.jobs[0].lease);
    let (deadline, held) = q
        .extend(&[(id.clone(), token)], T0 + 900)
        .await
        .expect("extend");
    assert_eq!((deadline, held), (T0 + 1_900, vec![true]));
    assert!(
        q.reserve(1, T0 + 1_500)
            .await
            .expect("reserve")
            .jobs
            .is_empty(),
        "renewed: not recovered"
    );
    // A settle prepared with the token before the renewal still acks (the renewal moved the
    // deadline, not the token): settling never races with renewing.
    assert_eq!(
        q.settle(
            vec![Settle::Ack {
                id,
                lease: token,
                successors: vec![],
                withdraw: vec![],
            }],
            T0 + 1_600
        )
        .await
        .expect("settle"),
        vec![true]
    );
    assert!(
        redis
            .keys()
            .await
            .iter()
            .all(|k| k.ends_with(":lease-seq") || k.ends_with(":holders")),
        "nothing left but the token counter: {:?}",
        redis.keys().await
    );
}

#[tokio::test]
async fn a_job_that_outlives_a_live_holders_lease_too_often_is_dead_lettered() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 100); // max_stalls = 2
    q.enqueue(&[NewJob::new(Ping { n: 1 }, T0).with_id("fragile")], T0)
        .await
        .expect("enqueue");
    let mut now = T0;
    for _ in 0..3 {
        assert_eq!(q.reserve(1, now).await.expect("reserve").jobs.len(), 1);
        // The holder stays alive (it keeps reserving) but never renews the job.
        assert!(
            q.reserve(1, now + 50)
                .await
                .expect("reserve")
                .jobs
                .is_empty()
        );
        now += 100;
    }
    let r = q.reserve(1, now).await.expect("reserve");
    assert!(r.jobs.is_empty());
    assert_eq!(r.dead_lettered, 1);
    let dead = q.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].id.as_str(), dead[0].kind.as_deref()),
        ("fragile", Some("ping"))
    );
    assert!(dead[0].error.contains("stalled"), "{}", dead[0].error);
}

#[tokio::test]
async fn after_redis_lost_its_data_an_old_lease_token_settles_nothing() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 1_000);
    q_enqueue_one(&q, "dispatch").await;
    let before = q.reserve(1, T0).await.expect("reserve");
    // Redis loses everything (restart without persistence, FLUSHALL) while the job runs;
    // the fleet re-creates the job and another worker leases it.
    let mut conn = redis.pool.get().await.expect("redis");
    let _: i64 = redis::cmd("DEL")
        .arg(redis.keys().await)
        .query_async(&mut *conn)
        .await
        .expect("DEL");
    q_enqueue_one(&q, "dispatch").await;
    let after = q.reserve(1, T0 + 10).await.expect("reserve");
    assert_ne!(
        before.jobs[0].lease, after.jobs[0].lease,
        "tokens never repeat"
    );
    assert_eq!(
        q.settle(vec![ack(&before.jobs[0])], T0 + 11)
            .await
            .expect("settle"),
        vec![false],
        "the worker from before the loss cannot ack the new lease"
    );
    assert_eq!(
        q.settle(vec![ack(&after.jobs[0])], T0 + 11)
            .await
            .expect("settle"),
        vec![true]
    );
}

#[tokio::test]
async fn leases_of_holders_that_are_gone_return_without_counting_as_stalls() {
    let redis = TestRedis::new().await;
    q_enqueue_one(&queue(&redis, 100), "tick:7").await;
    let mut now = T0;
    // Ten pods in a row take the job and are killed (never heard from again): each next
    // pod gets it back once the lease is over, and it is never dead-lettered (max_stalls 2).
    for pod in 0..10 {
        let q = queue(&redis, 100);
        let r = q.reserve(1, now).await.expect("reserve");
        assert_eq!(r.jobs.len(), 1, "pod {pod} gets the job");
        assert_eq!((r.recovered, r.dead_lettered), (u64::from(pod > 0), 0));
        now += 100;
    }
    assert!(
        queue(&redis, 100)
            .dead_letters(10)
            .await
            .expect("dead")
            .is_empty()
    );
}

async fn q_enqueue_one(q: &Queue<Ping>, id: &str) {
    q.enqueue(&[NewJob::new(Ping { n: 1 }, T0).with_id(id)], T0)
        .await
        .expect("enqueue");
}

#[tokio::test]
async fn retry_reschedules_with_the_new_envelope_and_dead_letter_keeps_the_error() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    q.enqueue(&[NewJob::new(Ping { n: 1 }, T0).with_id("flaky")], T0)
        .await
        .expect("enqueue");
    let r = q.reserve(1, T0).await.expect("reserve");
    let mut envelope: Envelope<Ping> = r.jobs[0].envelope.clone();
    envelope.attempt += 1;
    q.settle(
        vec![Settle::Retry {
            lease: r.jobs[0].lease,
            envelope,
            due_ms: T0 + 2_000,
        }],
        T0 + 5,
    )
    .await
    .expect("settle");
    assert!(
        q.reserve(1, T0 + 1_999)
            .await
            .expect("reserve")
            .jobs
            .is_empty(),
        "backoff respected"
    );
    let again = q.reserve(1, T0 + 2_000).await.expect("reserve");
    assert_eq!(again.jobs[0].envelope.attempt, 1);

    let settled = q
        .settle(
            vec![Settle::DeadLetter {
                id: "flaky".into(),
                lease: again.jobs[0].lease,
                error: "provider said no".into(),
            }],
            T0 + 2_001,
        )
        .await
        .expect("settle");
    assert_eq!(settled, vec![true]);
    let dead = q.dead_letters(10).await.expect("dead");
    assert_eq!(
        (dead[0].error.as_str(), dead[0].attempt, dead[0].failed_ms),
        ("provider said no", Some(1), T0 + 2_001)
    );
    assert_eq!(q.counts(T0 + 2_001).await.expect("counts").dead, 1);

    assert!(q.requeue_dead("flaky", T0 + 3_000).await.expect("requeue"));
    let revived = q.reserve(1, T0 + 3_000).await.expect("reserve");
    assert_eq!(
        revived.jobs[0].envelope.attempt, 0,
        "operator retry starts over"
    );
    assert_eq!(q.counts(T0 + 3_000).await.expect("counts").dead, 0);
}

#[tokio::test]
async fn corrupt_payload_is_dead_lettered_not_fatal() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    let k = q.keys().clone();
    let mut conn = redis.pool.get().await.expect("redis");
    let _: () = redis::pipe()
        .hset(&k.jobs, "garbage", &b"\xc1\xff not msgpack"[..])
        .zadd(&k.scheduled, "garbage", T0)
        .query_async(&mut *conn)
        .await
        .expect("plant garbage");
    q.enqueue(&[NewJob::new(Ping { n: 7 }, T0)], T0)
        .await
        .expect("enqueue");

    let r = q.reserve(10, T0).await.expect("reserve survives garbage");
    assert_eq!(r.jobs.len(), 1);
    assert_eq!(
        r.jobs[0].envelope.payload,
        Ping { n: 7 },
        "the good job still comes out"
    );
    assert_eq!(r.dead_lettered, 1);
    let dead = q.dead_letters(10).await.expect("dead");
    assert_eq!(dead[0].id, "garbage");
    assert!(
        dead[0].error.starts_with("corrupt payload"),
        "{}",
        dead[0].error
    );
    let raw: Vec<u8> = redis::cmd("HGET")
        .arg(&k.dead_jobs)
        .arg("garbage")
        .query_async(&mut *conn)
        .await
        .expect("raw kept");
    assert_eq!(
        raw, b"\xc1\xff not msgpack",
        "the bad bytes are kept for inspection"
    );
}

#[tokio::test]
async fn hand_back_returns_the_job_without_a_stall() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    q.enqueue(&[NewJob::new(Ping { n: 1 }, T0)], T0)
        .await
        .expect("enqueue");
    let r = q.reserve(1, T0).await.expect("reserve");
    let id = r.jobs[0].envelope.id.clone();
    q.settle(
        vec![Settle::HandBack {
            id,
            lease: r.jobs[0].lease,
        }],
        T0 + 10,
    )
    .await
    .expect("settle");
    let again = q.reserve(1, T0 + 10).await.expect("reserve");
    assert_eq!(again.jobs.len(), 1);
    assert_eq!(again.recovered, 0);
}

#[tokio::test]
async fn new_earliest_job_publishes_a_wakeup() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, 30_000);
    let mut wake = q.subscribe_wakeups(&redis.client).await.expect("subscribe");
    q.enqueue(&[NewJob::new(Ping { n: 1 }, T0 + 500)], T0)
        .await
        .expect("enqueue");
    q.enqueue(&[NewJob::new(Ping { n: 2 }, T0 + 900)], T0)
        .await
        .expect("later job: no wake-up");
    q.enqueue(&[NewJob::new(Ping { n: 3 }, T0 + 100)], T0)
        .await
        .expect("enqueue");
    let within = std::time::Duration::from_secs(5);
    assert_eq!(
        tokio::time::timeout(within, wake.next())
            .await
            .expect("wake-up"),
        Some(Some(T0 + 500))
    );
    assert_eq!(
        tokio::time::timeout(within, wake.next())
            .await
            .expect("wake-up"),
        Some(Some(T0 + 100)),
        "the T0+900 job did not change the head"
    );
}
