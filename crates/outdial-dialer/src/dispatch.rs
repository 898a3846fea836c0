//! The dispatch cycle (product §4, §5 "Dispatch cycle"): one at a time fleet-wide, every poll
//! interval. The planning (steps 1–5) is `outdial_control::dispatch::Planner::plan`; this
//! module admits and starts. product §5 numbers the same work in five steps (sweep, zones,
//! allocate, fetch, start); here it is in the order it runs:
//!
//! 1. **Sweep** contacts `locked` longer than the stale threshold back to `queued` — read
//!    with the loads in one statement, so the `UPDATE` runs only when a lock is stale.
//! 2. **Eligible zones**: which contact time zones of each dialing voice campaign are inside
//!    the campaign's calling window now.
//! 3. **Need**: each campaign keeps at most `⌈cps × lookahead⌉` contacts admitted ahead of
//!    its ticks, so admission follows its pace.
//! 4. **Fetch** due contacts in product §5 order: direct calls (no campaign) first, then up
//!    to each campaign's need in eligible zones. The read takes no row locks: only the contacts the
//!    allocation picks are locked, `FOR UPDATE SKIP LOCKED`, in step 6 — locking every
//!    campaign's candidates each second cost Postgres more than the whole rest of a call.
//! 5. **Allocate** `free = global limit − active` across organizations with demand and room
//!    ([`outdial_domain::allocation::allocate`]).
//! 6. **Admit** each organization's share in order (direct calls first, then campaign
//!    priority, then due time), taking a SIP channel per contact in the same step: global,
//!    organization and pool slots are taken together or not at all.
//! 7. **Start**: campaign ticks start admitted contacts at their pace (the cycle wakes a
//!    sleeping tick); direct calls start at once.
//!
//! Mutual exclusion: the cycle is a single queue job (id `dispatch`), and it also holds a
//! Postgres advisory lock for its transaction, so even a cycle whose lease was lost cannot
//! run beside another one.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use outdial_control::dispatch::{CampaignPlan, OrgPlan, Plan, interleave, org_plans};
use outdial_control::effects;
use outdial_domain::CampaignId;
use outdial_domain::ContactId;
use outdial_domain::contact::channel_holder;
use outdial_fleet::jobs::DialerJob;
use outdial_store::dialing::{self, Candidate};
use outdial_worker::{Done, JobContext, JobError};
use serde::Serialize;

use crate::Dialer;

/// What a cycle saw and did ([`Dialer::run_cycle`]); its debug log line and the dispatch
/// benchmark read it. (`dispatch explain` answers with `outdial_control::dispatch::Explain`.)
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DispatchReport {
    /// false when another cycle held the lock
    pub ran: bool,
    /// the cycle's `now`; `None` when it did not run
    pub at: Option<DateTime<Utc>>,
    /// stale locks returned to queued
    pub swept: usize,
    /// `dialer.global_concurrency_limit` (default 50)
    pub global_limit: u32,
    /// contacts locked or dialing, all organizations
    pub active_total: i64,
    /// `global_limit − active_total`
    pub free: u32,
    /// `(pool, max, in use)` of every channel pool
    pub pools: Vec<(String, u32, i64)>,
    /// per organization
    pub orgs: Vec<OrgPlan>,
    /// per dialing voice campaign
    pub campaigns: Vec<CampaignPlan>,
    /// direct calls admitted
    pub direct_admitted: usize,
    /// contacts admitted in all
    pub admitted: usize,
    /// how long the cycle took, ms
    pub duration_ms: f64,
    /// wall time per step, `name:ms,…` (lock, reads (with the sweep), plan, fetch,
    /// allocate, channels, lock_contacts, commit, wake)
    pub steps: String,
}

impl Dialer {
    pub(crate) async fn dispatch_job(&self, ctx: &JobContext) -> Result<Done<DialerJob>, JobError> {
        let now = self.clock().now();
        let report = self.run_cycle(now).await?;
        if report.ran {
            tracing::debug!(
                duration_ms = report.duration_ms,
                admitted = report.admitted,
                free = report.free,
                swept = report.swept,
                steps = %report.steps,
                "dispatch cycle"
            );
            metrics::histogram!("outdial_dialer_dispatch_cycle_seconds")
                .record(report.duration_ms / 1_000.0);
            metrics::counter!("outdial_dialer_admitted_total").increment(report.admitted as u64);
        }
        // Next cycle one poll interval after this one was planned; after a long stall, one
        // cycle now rather than a burst of catch-up cycles.
        let poll = self.svc.config.dialer.poll_interval_ms;
        let base = ctx.scheduled_ms.max(now.timestamp_millis() - poll);
        Ok(Done::then(vec![DialerJob::Dispatch.at(base + poll)]))
    }
    /// Runs one dispatch cycle at `now` (see the module docs) and reports what it did.
    /// Returns `ran: false` without doing anything when another cycle holds the lock.
    ///
    /// Errors: Postgres or Redis failures; the transaction is rolled back and channels taken
    /// in it are released.
    pub async fn run_cycle(&self, now: DateTime<Utc>) -> Result<DispatchReport, JobError> {
        let started = Instant::now();
        let cfg = &self.svc.config.dialer;
        let now_ms = now.timestamp_millis();
        let mut tx = self
            .dispatch_pool()
            .begin()
            .await
            .map_err(outdial_store::StoreError::from)?;
        if !dialing::try_dispatch_lock(&mut tx).await? {
            return Ok(DispatchReport::default());
        }
        let locked_at = Instant::now();
        let stale_before = now - Duration::milliseconds(cfg.stale_lock_ms);
        let plan = self
            .planner
            .plan(&mut tx, self.dispatch_pool(), now, Some(stale_before))
            .await?;
        let Plan {
            loads,
            swept,
            mut plans,
            pools,
            active_total,
            free,
            demands,
            allocation,
            picked,
            mut timings,
        } = plan;
        timings
            .steps
            .insert(0, ("lock", (locked_at - started).as_secs_f64() * 1_000.0));
        // Every organization, zeros included, so a gauge never keeps a stale value.
        for o in &loads {
            metrics::gauge!("outdial_dialer_active_calls", "org" => o.org_id.to_string())
                .set(f64::from(o.active));
        }

        // Take a channel for each pick, pool by pool, organizations interleaved; only
        // contacts that got one are admitted.
        let mut by_pool: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
        for c in interleave(&picked) {
            by_pool.entry(c.sip_pool.clone()).or_default().push(c);
        }
        let mut granted: Vec<Candidate> = Vec::new();
        for (pool, list) in &by_pool {
            let holders: Vec<String> = list
                .iter()
                .map(|c| channel_holder(c.contact_id, c.attempt_count))
                .collect();
            match self.svc.channels.acquire(pool, &holders, now_ms).await {
                Ok(n) => granted.extend(list.iter().take(n).cloned()),
                Err(e) => {
                    self.release_holders(&granted, now_ms).await;
                    return Err(e.into());
                }
            }
        }
        timings.step("channels");
        let ids: Vec<ContactId> = granted.iter().map(|c| c.contact_id).collect();
        let locked = match dialing::lock_contacts(&mut tx, &ids, now).await {
            Ok(l) => l,
            Err(e) => {
                self.release_holders(&granted, now_ms).await;
                return Err(e.into());
            }
        };
        timings.step("lock_contacts");
        if let Err(e) = outdial_store::commit(tx).await {
            self.release_holders(&granted, now_ms).await;
            return Err(e.into());
        }
        timings.step("commit");
        let locked: std::collections::HashSet<ContactId> = locked.into_iter().collect();
        let (admitted, lost): (Vec<Candidate>, Vec<Candidate>) = granted
            .into_iter()
            .partition(|c| locked.contains(&c.contact_id));
        self.release_holders(&lost, now_ms).await;
        // Swept contacts that were admitted again in this cycle kept the same holder id:
        // releasing it now would take their new channel away.
        let readmitted: std::collections::HashSet<ContactId> =
            admitted.iter().map(|c| c.contact_id).collect();
        let released: Vec<dialing::HolderRef> = swept
            .iter()
            .filter(|(id, _, _)| !readmitted.contains(id))
            .cloned()
            .collect();
        effects::release_channels(&self.svc, &effects::holds_of(&released), now_ms).await;

        // Start: wake the campaigns' ticks (moving them earlier only: a tick on its pacing
        // grid is not moved before its planned time — see voice_tick), start direct calls.
        let mut jobs = Vec::new();
        let mut admitted_per: HashMap<CampaignId, usize> = HashMap::new();
        for c in &admitted {
            if let Some(id) = c.campaign_id {
                *admitted_per.entry(id).or_default() += 1;
            }
        }
        for p in &mut plans {
            p.admitted = admitted_per.get(&p.campaign_id).copied().unwrap_or(0);
            if p.admitted > 0 {
                let tick = DialerJob::VoiceTick {
                    campaign_id: p.campaign_id,
                    planned_us: None,
                };
                jobs.push(tick.at(now_ms).keep_earliest());
            }
        }
        let direct: Vec<&Candidate> = admitted
            .iter()
            .filter(|c| c.campaign_id.is_none())
            .collect();
        jobs.extend(direct.iter().map(|c| {
            DialerJob::StartContact {
                contact_id: c.contact_id,
            }
            .at(now_ms)
        }));
        if !jobs.is_empty() {
            self.svc.dialer_queue.enqueue(&jobs, now_ms).await?;
        }
        timings.step("wake");
        let orgs = org_plans(
            &demands,
            &allocation,
            |org| admitted.iter().filter(|c| c.org_id == org).count(),
            |_| false,
        );
        Ok(DispatchReport {
            ran: true,
            at: Some(now),
            swept: swept.len(),
            global_limit: cfg.global_concurrency_limit,
            active_total,
            free,
            pools: pools
                .iter()
                .map(|p| (p.pool.clone(), p.max, p.count))
                .collect(),
            orgs,
            campaigns: plans,
            direct_admitted: direct.len(),
            admitted: admitted.len(),
            duration_ms: started.elapsed().as_secs_f64() * 1_000.0,
            steps: timings.render(),
        })
    }

    /// Gives back the channels taken for `contacts` in a cycle that did not admit them.
    async fn release_holders(&self, contacts: &[Candidate], now_ms: i64) {
        let holds: Vec<effects::Hold> = contacts
            .iter()
            .map(|c| {
                (
                    c.sip_pool.clone(),
                    channel_holder(c.contact_id, c.attempt_count),
                )
            })
            .collect();
        effects::release_channels(&self.svc, &holds, now_ms).await;
    }
}
