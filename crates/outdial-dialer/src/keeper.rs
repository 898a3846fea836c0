//! The fleet's control loop, kept by every dialer process (product §3 "The control loop").
//!
//! The singleton jobs (`dispatch`, `maintenance`, `did-lifecycle`) plan their own successors,
//! so a Redis that lost its data (a restart without persistence, a failover that lost the
//! last writes, a `FLUSHALL`) would stop the fleet for good. Every dialer therefore runs a
//! [`Keeper`] on a local timer (`dialer.keeper_interval_ms`, 1 000 ms):
//!
//! 1. It reads the epoch marker `<prefix>outdial:redis-epoch`, a key without a TTL that the
//!    first keeper to find it missing creates (`SET NX`). A marker that is missing, or whose
//!    value differs from the one this process saw last, means Redis lost its data — a
//!    restart's changed run id would not reveal a flush, the marker reveals both.
//! 2. On a loss it first re-takes the channel holders of every `locked`/`dialing` contact
//!    (so the dispatch cycle never admits into a pool Redis forgot was busy), then enqueues
//!    `maintenance` due now, which rebuilds every dialing campaign's tick, every open
//!    attempt's timeout and originate jobs and every open text's jobs from Postgres.
//! 3. Every step enqueues the three singletons, deduplicated by id: with many dialers this
//!    costs one script call per process per interval and changes nothing while they exist.

use std::sync::Arc;

use outdial_fleet::jobs::DialerJob;
use outdial_queue::NewJob;
use outdial_worker::JobError;

use crate::Dialer;

/// What one [`Keeper::step`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Redis still holds its data: the singletons were only made sure of.
    Intact,
    /// The epoch marker was missing or changed: channel holders were re-taken and
    /// `maintenance` enqueued due now.
    Reconciled,
}

/// Keeps the control loop alive from one dialer process; see the module docs.
#[derive(Debug)]
pub struct Keeper {
    dialer: Arc<Dialer>,
    /// The marker value this process saw last (`None` before its first step).
    epoch: Option<String>,
}

impl Keeper {
    /// A keeper for `dialer` that has not looked at Redis yet.
    pub fn new(dialer: Arc<Dialer>) -> Self {
        Self {
            dialer,
            epoch: None,
        }
    }

    /// The Redis key of the epoch marker: `<redis.prefix>outdial:redis-epoch`.
    pub fn marker_key(&self) -> String {
        format!("{}outdial:redis-epoch", self.dialer.svc.config.redis.prefix)
    }

    /// One round: detect a data loss (reconcile then) and make sure the singletons exist.
    /// A first step that finds the marker present only remembers it.
    ///
    /// Errors: Redis or Postgres unreachable ([`JobError::Outage`]); nothing is remembered
    /// then, so the next step tries the whole round again.
    pub async fn step(&mut self) -> Result<Kept, JobError> {
        let svc = &self.dialer.svc;
        let key = self.marker_key();
        let mut conn = svc.redis.get().await.map_err(JobError::outage)?;
        let found: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut *conn)
            .await
            .map_err(JobError::outage)?;
        let lost = match (&found, &self.epoch) {
            (None, _) => true,
            (Some(now), Some(seen)) => now != seen,
            (Some(_), None) => false,
        };
        let now_ms = self.dialer.clock().now_ms();
        let mut epoch = found;
        if lost {
            tracing::warn!(marker = %key, "Redis lost its data: reconciling from Postgres");
            self.dialer.restore_channel_holders(now_ms).await?;
            if epoch.is_none() {
                // SET … NX GET: the marker stays the first keeper's, and every keeper learns it.
                let mine = format!("{now_ms}-{}", svc.dialer_queue.holder());
                let theirs: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&mine)
                    .arg("NX")
                    .arg("GET")
                    .query_async(&mut *conn)
                    .await
                    .map_err(JobError::outage)?;
                epoch = Some(theirs.unwrap_or(mine));
            }
            let now: Vec<NewJob<DialerJob>> =
                vec![DialerJob::Maintenance.at(now_ms).keep_earliest()];
            svc.dispatch_queue.enqueue(&now, now_ms).await?;
            metrics::counter!("outdial_redis_data_loss_total").increment(1);
        }
        self.dialer.bootstrap().await?;
        self.epoch = epoch;
        Ok(if lost { Kept::Reconciled } else { Kept::Intact })
    }

    /// Steps every `dialer.keeper_interval_ms` until `shutdown` resolves. A failed step is
    /// logged (an outage as a warning) and tried again at the next interval.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) {
        let every = std::time::Duration::from_millis(
            self.dialer.svc.config.dialer.keeper_interval_ms.max(1),
        );
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = timer.tick() => {}
            }
            match self.step().await {
                Ok(_) => {}
                Err(e @ JobError::Outage { .. }) => {
                    tracing::warn!(error = %e, "keeper: a dependency is down; trying again");
                }
                Err(e) => tracing::error!(error = %e, "keeper step failed"),
            }
        }
    }
}
