//! The dispatch cycle's view of the fleet (product §4, §5 "Dispatch cycle"), shared by the
//! cycle itself (the dialer) and by `dispatch explain` (the API and `outdialctl`).
//!
//! [`Planner::plan`] reads what a cycle decides on and decides: each dialing voice campaign's
//! need and open zones, the free global slots, the due candidates, the product §4 allocation
//! and each organization's picks in admission order. The dialer's cycle admits the picks;
//! [`Planner::explain`] turns the same plan into a report of what blocks each campaign,
//! without changing anything.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use outdial_domain::allocation::{OrgDemand, allocate};
use outdial_domain::campaign::{CampaignStatus, Channel};
use outdial_domain::phone::parse_timezone_key;
use outdial_domain::{CampaignId, OrgId};
use outdial_fleet::services::Services;
use outdial_store::campaigns::{Campaign, campaigns_by_id, dialing_campaign_heads};
use outdial_store::dialing::{self, Candidate};
use serde::Serialize;

use crate::ControlError;

/// One organization in a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgPlan {
    /// the organization (allocation ties go to the lower id, product §4)
    pub org_id: OrgId,
    /// its `concurrency_limit`: the proportional weight and cap on active calls
    pub limit: u32,
    /// contacts locked or dialing at the start of the cycle
    pub active: u32,
    /// `limit − active`
    pub room: u32,
    /// due contacts it could start (capped by its campaigns' pace)
    pub demand: u32,
    /// slots the water-filling allocation gave it (product §4)
    pub allocated: u32,
    /// contacts actually admitted (less than allocated when a channel pool was full)
    pub admitted: u32,
}

/// One dialing voice campaign in a cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignPlan {
    /// the campaign; its tick is woken when the cycle admits for it
    pub campaign_id: CampaignId,
    /// the organization whose allocation its admissions use
    pub org_id: OrgId,
    /// higher is admitted first within the organization (product §5 "Dispatch cycle" step 4)
    pub priority: i32,
    /// ticks (call starts) per second, (0, 1000]; sets `need`
    pub calls_per_second: f64,
    /// pool its admitted contacts take a channel from (default `campaign`)
    pub sip_pool: String,
    /// admitted, waiting for a tick
    pub locked: i64,
    /// contacts `dialing`: in a call, holding a channel
    pub dialing: i64,
    /// contacts it could take this cycle (`⌈cps × lookahead⌉ − locked`)
    pub need: i32,
    /// zone keys inside the window now
    pub open_zones: Vec<String>,
    /// zone keys outside the window, with their next opening
    pub closed_zones: Vec<(String, Option<DateTime<Utc>>)>,
    /// due contacts fetched for it
    pub candidates: usize,
    /// contacts admitted for it
    pub admitted: usize,
}

/// Settings of the dialing voice campaigns, by id, each with the row version it was read at
/// ([`outdial_store::campaigns::CampaignHead::version`]). A cycle reads every dialing
/// campaign's version and zone keys (a few bytes each) and the full row only of campaigns it
/// has not seen or whose row changed since — a pause, resume or edit is seen by the next
/// cycle, as before. Voice ticks share it: a tick's contact read returns the campaign's
/// version too ([`Planner::campaign_at_version`]), so a tick reads no campaign row while
/// the settings are current.
#[derive(Debug, Default)]
pub(crate) struct CampaignCache(Mutex<HashMap<CampaignId, (i64, Arc<Campaign>)>>);

impl CampaignCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CampaignId, (i64, Arc<Campaign>)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How many contacts a campaign keeps admitted ahead of its ticks.
fn pace_buffer(calls_per_second: f64, lookahead_ms: i64) -> i64 {
    ((calls_per_second * lookahead_ms as f64 / 1_000.0).ceil() as i64).max(1)
}

/// The order contacts of one organization are admitted in (product §5 "Dispatch cycle" step 4):
/// direct calls first, then higher campaign priority, then earlier due time, then older contact.
fn admission_order(candidates: &mut [(Candidate, i32)]) {
    candidates.sort_by(|(a, pa), (b, pb)| {
        a.campaign_id
            .is_some()
            .cmp(&b.campaign_id.is_some())
            .then(pb.cmp(pa))
            .then(a.retry_after.cmp(&b.retry_after))
            .then(a.contact_id.cmp(&b.contact_id))
    });
}

/// Interleaves organizations' ordered picks (first of each org, then second of each, …) so
/// that when a channel pool can only take a prefix, every organization loses alike.
pub fn interleave(per_org: &BTreeMap<OrgId, Vec<Candidate>>) -> Vec<Candidate> {
    let longest = per_org.values().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| per_org.values().filter_map(move |v| v.get(i).cloned()))
        .collect()
}

/// What a cycle (or `explain`) computes before admitting anything ([`Planner::plan`]).
#[derive(Debug)]
pub struct Plan {
    /// every organization's limit and active count (product §4)
    pub loads: Vec<dialing::OrgLoad>,
    /// contacts the stale-lock sweep returned to queued (a cycle only)
    pub swept: Vec<dialing::HolderRef>,
    /// each dialing voice campaign's need, open and closed zones and candidates
    pub plans: Vec<CampaignPlan>,
    /// every channel pool's max and count
    pub pools: Vec<outdial_channels::PoolStatus>,
    /// contacts locked or dialing, all organizations
    pub active_total: i64,
    /// `global limit − active_total`, at least 0
    pub free: u32,
    /// per organization: limit, active, demand (the allocation's input)
    pub demands: Vec<OrgDemand>,
    /// slots allocated to each of `demands`, in its order
    pub allocation: Vec<u32>,
    /// each organization's picks in admission order, `allocation` long
    pub picked: BTreeMap<OrgId, Vec<Candidate>>,
    /// wall time of each step, ms (logged with the cycle)
    pub timings: Timings,
}

/// Wall time of a cycle's steps, for the debug log line (`outdialctl bench dispatch`).
#[derive(Debug, Default)]
pub struct Timings {
    /// when the previous step ended
    last: Option<Instant>,
    /// `(step, ms)` in order
    pub steps: Vec<(&'static str, f64)>,
}

impl Timings {
    /// Timings starting now.
    pub fn start() -> Self {
        Self {
            last: Some(Instant::now()),
            steps: Vec::new(),
        }
    }

    /// Records the wall time since the previous step as step `name`.
    pub fn step(&mut self, name: &'static str) {
        let now = Instant::now();
        if let Some(last) = self.last {
            self.steps
                .push((name, (now - last).as_secs_f64() * 1_000.0));
        }
        self.last = Some(now);
    }

    /// The steps as `name:ms,…` (one decimal).
    pub fn render(&self) -> String {
        self.steps
            .iter()
            .map(|(n, ms)| format!("{n}:{ms:.1}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The dispatch cycle's planning, over the fleet's services, with the campaign settings
/// cache the cycle and the voice ticks share. Cheap to share (`Arc`); one per process.
#[derive(Debug)]
pub struct Planner {
    svc: Services,
    cache: CampaignCache,
}

impl Planner {
    /// A planner over `svc` with an empty campaign cache.
    pub fn new(svc: Services) -> Self {
        Self {
            svc,
            cache: CampaignCache::default(),
        }
    }

    /// The dialing voice campaigns in id order and each one's contact zone keys: versions
    /// and zones read fresh, settings from [`CampaignCache`] where the version still matches.
    /// A campaign whose re-read row is no longer a dialing voice campaign (paused between the
    /// two reads) is left out.
    ///
    /// Errors: Postgres failures, or a stored campaign that does not parse.
    async fn dialing_voice_campaigns(
        &self,
        conn: &mut sqlx::PgConnection,
    ) -> Result<(Vec<Arc<Campaign>>, HashMap<CampaignId, Vec<String>>), ControlError> {
        let heads = dialing_campaign_heads(&mut *conn, Channel::Voice).await?;
        let changed: Vec<CampaignId> = {
            let cache = self.cache.lock();
            heads
                .iter()
                .filter(|h| cache.get(&h.id).is_none_or(|(v, _)| *v != h.version))
                .map(|h| h.id)
                .collect()
        };
        let fresh = if changed.is_empty() {
            Vec::new()
        } else {
            campaigns_by_id(&mut *conn, &changed).await?
        };
        let mut cache = self.cache.lock();
        for (version, c) in fresh {
            cache.insert(c.id, (version, Arc::new(c)));
        }
        let mut campaigns = Vec::with_capacity(heads.len());
        let mut zones = HashMap::with_capacity(heads.len());
        for h in heads {
            if let Some((_, c)) = cache.get(&h.id)
                && c.status == CampaignStatus::Dialing
                && c.channel == Channel::Voice
            {
                campaigns.push(Arc::clone(c));
                zones.insert(h.id, h.timezones);
            }
        }
        cache.retain(|id, _| zones.contains_key(id));
        Ok((campaigns, zones))
    }

    /// Campaign `id`'s settings from the cache if they are at row `version`, else read now
    /// (and cached when still a dialing voice campaign): a voice tick's campaign
    /// ([`dialing::next_admitted`] gives the version). `None` when the campaign no longer
    /// exists.
    ///
    /// Errors: Postgres failures, or a stored campaign that does not parse.
    pub async fn campaign_at_version(
        &self,
        conn: &mut sqlx::PgConnection,
        id: CampaignId,
        version: i64,
    ) -> Result<Option<Arc<Campaign>>, ControlError> {
        if let Some((v, c)) = self.cache.lock().get(&id)
            && *v == version
        {
            return Ok(Some(Arc::clone(c)));
        }
        let Some((version, c)) = campaigns_by_id(conn, &[id]).await?.into_iter().next() else {
            return Ok(None);
        };
        let c = Arc::new(c);
        if c.status == CampaignStatus::Dialing && c.channel == Channel::Voice {
            self.cache.lock().insert(id, (version, Arc::clone(&c)));
        }
        Ok(Some(c))
    }

    /// Reads the state a cycle decides on and decides: campaign needs and open zones, free
    /// slots, candidates, the product §4 allocation and each organization's picks in admission
    /// order. With `sweep_before` (a cycle, not `explain`), contacts locked before it go back
    /// to queued first (product §5 "Dispatch cycle" step 1) — only when the loads show such a
    /// contact, so a cycle with nothing stale pays nothing for the sweep.
    ///
    /// `pool` gives the connection for the campaign read beside `tx`: the cycle's own pool
    /// in a cycle, the handlers' pool for `explain`.
    ///
    /// Errors: [`ControlError::Store`] for Postgres failures or a stored row that does not
    /// parse, [`ControlError::Channels`] when the channel pools cannot be read (Redis); the
    /// caller's transaction `tx` is left as it is (a cycle rolls it back).
    pub async fn plan(
        &self,
        tx: &mut sqlx::PgConnection,
        pool: &sqlx::PgPool,
        now: DateTime<Utc>,
        sweep_before: Option<DateTime<Utc>>,
    ) -> Result<Plan, ControlError> {
        let cfg = &self.svc.config.dialer;
        let mut timings = Timings::start();
        // The reads run at once: the loads (and a sweep when they show a stale lock) on this
        // cycle's transaction — the loads must see its sweep, so swept contacts can be
        // admitted again in the same cycle — the campaign settings, their zones and the
        // channel pools each on their own connection: one wait instead of five (under CPU
        // contention every round trip also waits for a CPU). Boxed: the joined queries make
        // a large future.
        let now_ms = now.timestamp_millis();
        let ((loads, swept), (campaigns, zones_of), pools) = Box::pin(async {
            tokio::try_join!(
                async {
                    let loads = dialing::loads(&mut *tx).await?;
                    match sweep_before {
                        Some(before) if loads.oldest_lock.is_some_and(|t| t < before) => {
                            let swept = dialing::sweep_stale_locks(&mut *tx, before, now).await?;
                            Ok::<_, ControlError>((dialing::loads(&mut *tx).await?, swept))
                        }
                        _ => Ok((loads, Vec::new())),
                    }
                },
                async {
                    let mut c = pool.acquire().await?;
                    self.dialing_voice_campaigns(&mut c).await
                },
                async {
                    self.svc
                        .channels
                        .status_all(now_ms)
                        .await
                        .map_err(ControlError::from)
                },
            )
        })
        .await?;
        timings.step("reads");
        let campaign_loads: HashMap<CampaignId, (i64, i64)> = loads
            .campaigns
            .into_iter()
            .map(|(c, l, d)| (c, (l, d)))
            .collect();
        let mut verdicts = VerdictCache::new();
        let mut plans: Vec<CampaignPlan> = campaigns
            .iter()
            .map(|c| {
                plan_campaign(
                    c,
                    zones_of.get(&c.id),
                    &campaign_loads,
                    now,
                    cfg.lookahead_ms,
                    &mut verdicts,
                )
            })
            .collect();
        let loads = loads.orgs;
        let active_total: i64 = loads.iter().map(|o| i64::from(o.active)).sum();
        let free = u32::try_from((i64::from(cfg.global_concurrency_limit) - active_total).max(0))
            .unwrap_or(0);
        timings.step("plan");
        let pool_free = |name: &str| {
            pools
                .iter()
                .find(|p| p.pool == name)
                .map_or(0, |p| (i64::from(p.max) - p.count).max(0))
        };
        let needs: Vec<(CampaignId, i32)> = plans
            .iter()
            .filter(|p| !p.open_zones.is_empty())
            .map(|p| (p.campaign_id, p.need))
            .collect();
        let eligible: Vec<(CampaignId, String)> = plans
            .iter()
            .flat_map(|p| p.open_zones.iter().map(move |z| (p.campaign_id, z.clone())))
            .collect();
        let direct_limit = i64::from(free).min(pool_free("api"));
        let candidates = if free == 0 {
            Vec::new()
        } else {
            dialing::fetch_candidates(tx, now, &needs, &eligible, direct_limit).await?
        };
        timings.step("fetch");

        // Demand per organization, then the product §4 allocation.
        let priority: HashMap<CampaignId, i32> =
            campaigns.iter().map(|c| (c.id, c.priority)).collect();
        let mut by_org: BTreeMap<OrgId, Vec<(Candidate, i32)>> = BTreeMap::new();
        for cand in candidates {
            let p = cand
                .campaign_id
                .and_then(|c| priority.get(&c).copied())
                .unwrap_or(i32::MAX);
            by_org.entry(cand.org_id).or_default().push((cand, p));
        }
        let mut per_campaign: HashMap<CampaignId, usize> = HashMap::new();
        for (c, _) in by_org.values().flatten() {
            if let Some(id) = c.campaign_id {
                *per_campaign.entry(id).or_default() += 1;
            }
        }
        for p in &mut plans {
            p.candidates = per_campaign.get(&p.campaign_id).copied().unwrap_or(0);
        }
        let demands: Vec<OrgDemand> = loads
            .iter()
            .map(|o| OrgDemand {
                org_id: o.org_id,
                limit: o.limit,
                active: o.active,
                demand: u32::try_from(by_org.get(&o.org_id).map_or(0, Vec::len))
                    .unwrap_or(u32::MAX),
            })
            .collect();
        let allocation = allocate(free, &demands);
        let mut picked: BTreeMap<OrgId, Vec<Candidate>> = BTreeMap::new();
        for (o, n) in demands.iter().zip(&allocation) {
            if let Some(list) = by_org.get_mut(&o.org_id) {
                admission_order(list);
                picked.insert(
                    o.org_id,
                    list.iter()
                        .take(*n as usize)
                        .map(|(c, _)| c.clone())
                        .collect(),
                );
            }
        }
        timings.step("allocate");
        Ok(Plan {
            loads,
            swept,
            plans,
            pools,
            active_total,
            free,
            demands,
            allocation,
            picked,
            timings,
        })
    }

    /// Explains the dispatch state at `now` without changing anything (`outdialctl dispatch
    /// explain`, `GET /api/campaigns/:id/stats`): what a cycle would allocate to each
    /// organization, and for every voice campaign that is dialing or paused whether it is
    /// dialing and, if not, why (product §11).
    ///
    /// Errors: Postgres or Redis failures.
    pub async fn explain(&self, now: DateTime<Utc>) -> Result<Explain, ControlError> {
        let cfg = &self.svc.config.dialer;
        let pool = self.svc.store.pool();
        let mut tx = pool.begin().await?;
        let Plan {
            plans,
            pools,
            active_total,
            free,
            demands,
            allocation,
            ..
        } = self.plan(&mut tx, pool, now, None).await?;
        let paused = outdial_store::campaigns::paused_campaigns(&mut tx, Channel::Voice).await?;
        let next_due = dialing::next_due_by_campaign(&mut tx).await?;
        // Only the organizations of the dialing campaigns shown are judged.
        let planned_orgs: Vec<OrgId> = plans.iter().map(|p| p.org_id).collect();
        let rule = self.svc.config.caller_id_rule();
        let usable_dids =
            outdial_store::dids::usable_did_counts(&mut tx, &rule, &planned_orgs, now).await?;
        tx.rollback().await?;

        // Organizations with calls, demand, or a campaign shown below.
        let shown: std::collections::HashSet<OrgId> = plans
            .iter()
            .map(|p| p.org_id)
            .chain(paused.iter().map(|c| c.org_id))
            .collect();
        let orgs = org_plans(&demands, &allocation, |_| 0, |id| shown.contains(&id));
        let org_of = |id: OrgId| orgs.iter().find(|o| o.org_id == id);
        let mut campaigns = Vec::new();
        for p in &plans {
            let mut reasons = Vec::new();
            if p.open_zones.is_empty() {
                let until = p.closed_zones.iter().filter_map(|(_, t)| *t).min();
                reasons.push(match until {
                    Some(t) => format!(
                        "calling window closed in every contact time zone until {}",
                        t.format("%Y-%m-%d %H:%M UTC")
                    ),
                    None => "no contact time zone can be called (unknown zones or no contacts)"
                        .to_owned(),
                });
            }
            if usable_dids.get(&p.org_id).copied().unwrap_or(0) == 0 {
                reasons.push(
                    "no usable caller ID (all cooling, burned or below the score threshold)"
                        .to_owned(),
                );
            }
            if let Some(o) = org_of(p.org_id)
                && o.room == 0
            {
                reasons.push(format!(
                    "organization at capacity ({} of {} active)",
                    o.active, o.limit
                ));
            }
            if free == 0 {
                reasons.push(format!(
                    "global limit full ({active_total} of {} active)",
                    cfg.global_concurrency_limit
                ));
            }
            if let Some(pool) = pools.iter().find(|x| x.pool == p.sip_pool)
                && pool.count >= i64::from(pool.max)
            {
                reasons.push(format!(
                    "channel pool {} full ({} of {})",
                    pool.pool, pool.count, pool.max
                ));
            }
            if !p.open_zones.is_empty() && p.candidates == 0 && p.locked == 0 {
                match next_due.get(&p.campaign_id) {
                    Some(t) if *t > now => reasons.push(format!(
                        "no contact due until {}",
                        t.format("%Y-%m-%d %H:%M:%S UTC")
                    )),
                    Some(_) => reasons.push("due contacts are all in closed time zones".to_owned()),
                    None if p.dialing == 0 => reasons.push("no contact left to call".to_owned()),
                    None => {}
                }
            }
            let dialing = p.locked + p.dialing > 0 || (p.candidates > 0 && reasons.is_empty());
            campaigns.push(CampaignExplain {
                plan: p.clone(),
                status: "dialing".into(),
                dialing,
                reasons,
            });
        }
        for c in paused {
            let reason = self
                .svc
                .store
                .campaign_transitions(c.id)
                .await?
                .last()
                .and_then(|t| t.reason.clone());
            campaigns.push(CampaignExplain {
                plan: plan_campaign(
                    &c,
                    None,
                    &HashMap::new(),
                    now,
                    cfg.lookahead_ms,
                    &mut VerdictCache::new(),
                ),
                status: "paused".into(),
                dialing: false,
                reasons: vec![match reason {
                    Some(r) => format!("paused: {r}"),
                    None => "paused".to_owned(),
                }],
            });
        }
        Ok(Explain {
            at: now,
            global_limit: cfg.global_concurrency_limit,
            active_total,
            free,
            pools: pools
                .iter()
                .map(|p| (p.pool.clone(), p.max, p.count))
                .collect(),
            orgs,
            campaigns,
        })
    }
}

/// The organizations of `demands` with calls or demand, or for which `also(org)` holds, each
/// with its allocation (`allocation`, in `demands`' order) and `admitted(org)` contacts.
pub fn org_plans(
    demands: &[OrgDemand],
    allocation: &[u32],
    admitted: impl Fn(OrgId) -> usize,
    also: impl Fn(OrgId) -> bool,
) -> Vec<OrgPlan> {
    demands
        .iter()
        .zip(allocation)
        .filter(|(o, _)| o.active > 0 || o.demand > 0 || also(o.org_id))
        .map(|(o, a)| OrgPlan {
            org_id: o.org_id,
            limit: o.limit,
            active: o.active,
            room: o.room(),
            demand: o.demand,
            allocated: *a,
            admitted: u32::try_from(admitted(o.org_id)).unwrap_or(u32::MAX),
        })
        .collect()
}

/// One campaign in an [`Explain`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignExplain {
    /// what the cycle sees of it
    #[serde(flatten)]
    pub plan: CampaignPlan,
    /// `dialing` or `paused`
    pub status: String,
    /// whether it is making calls now (or would start some at the next cycle)
    pub dialing: bool,
    /// why it is not dialing, or what limits it (empty when nothing does)
    pub reasons: Vec<String>,
}

/// The answer of [`Planner::explain`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explain {
    /// the instant it was computed for (injected clock)
    pub at: DateTime<Utc>,
    /// `dialer.global_concurrency_limit` (default 50)
    pub global_limit: u32,
    /// contacts locked or dialing, all organizations
    pub active_total: i64,
    /// `global_limit − active_total`, at least 0
    pub free: u32,
    /// `(pool, max, in use)`
    pub pools: Vec<(String, u32, i64)>,
    /// per organization with calls or demand: limit, active, room, demand, allocation
    pub orgs: Vec<OrgPlan>,
    /// per voice campaign dialing or paused
    pub campaigns: Vec<CampaignExplain>,
}

/// Whether a zone key is callable under a window now: computed once per distinct
/// (window, zone key) per cycle — thousands of campaigns share a handful of zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZoneVerdict {
    Open,
    Closed(Option<DateTime<Utc>>),
    Unknown,
}

type VerdictCache = HashMap<(outdial_domain::window::CallingWindow, String), ZoneVerdict>;

fn zone_verdict(
    cache: &mut VerdictCache,
    c: &Campaign,
    key: &str,
    now: DateTime<Utc>,
) -> ZoneVerdict {
    *cache.entry((c.window, key.to_owned())).or_insert_with(|| match parse_timezone_key(key) {
        Ok(tzs) if c.window.is_open_in_all(&tzs, now) => ZoneVerdict::Open,
        Ok(tzs) => ZoneVerdict::Closed(c.window.next_opening_in_all(&tzs, now)),
        Err(bad) => {
            tracing::warn!(campaign = %c.id, zone = %bad, "unknown time zone on contacts; they are not dialed");
            ZoneVerdict::Unknown
        }
    })
}

fn plan_campaign(
    c: &Campaign,
    zones: Option<&Vec<String>>,
    loads: &HashMap<CampaignId, (i64, i64)>,
    now: DateTime<Utc>,
    lookahead_ms: i64,
    cache: &mut VerdictCache,
) -> CampaignPlan {
    let (locked, dialing) = loads.get(&c.id).copied().unwrap_or((0, 0));
    let mut open_zones = Vec::new();
    let mut closed_zones = Vec::new();
    for key in zones.into_iter().flatten() {
        match zone_verdict(cache, c, key, now) {
            ZoneVerdict::Open => open_zones.push(key.clone()),
            ZoneVerdict::Closed(next) => closed_zones.push((key.clone(), next)),
            ZoneVerdict::Unknown => closed_zones.push((key.clone(), None)),
        }
    }
    let need = i32::try_from((pace_buffer(c.calls_per_second, lookahead_ms) - locked).max(0))
        .unwrap_or(i32::MAX);
    CampaignPlan {
        campaign_id: c.id,
        org_id: c.org_id,
        priority: c.priority,
        calls_per_second: c.calls_per_second,
        sip_pool: c.sip_pool.clone(),
        locked,
        dialing,
        need,
        open_zones,
        closed_zones,
        candidates: 0,
        admitted: 0,
    }
}
#[cfg(test)]
mod tests {
    use outdial_domain::ContactId;

    use super::*;

    fn cand(id: i64, org: i64, campaign: Option<i64>, due_s: i64) -> Candidate {
        Candidate {
            contact_id: ContactId(id),
            org_id: OrgId(org),
            campaign_id: campaign.map(CampaignId),
            attempt_count: 0,
            sip_pool: "campaign".into(),
            retry_after: DateTime::<Utc>::from_timestamp(due_s, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn direct_calls_first_then_priority_then_due_time() {
        let mut list = vec![
            (cand(1, 1, Some(10), 5), 0),
            (cand(2, 1, Some(11), 9), 5),
            (cand(3, 1, None, 20), i32::MAX),
            (cand(4, 1, Some(11), 1), 5),
            (cand(5, 1, Some(10), 1), 0),
        ];
        admission_order(&mut list);
        assert_eq!(
            list.iter().map(|(c, _)| c.contact_id.0).collect::<Vec<_>>(),
            vec![3, 4, 2, 5, 1]
        );
    }

    #[test]
    fn interleave_takes_one_per_org_in_turn() {
        let mut m = BTreeMap::new();
        m.insert(OrgId(2), vec![cand(20, 2, None, 0), cand(21, 2, None, 0)]);
        m.insert(
            OrgId(1),
            vec![
                cand(10, 1, None, 0),
                cand(11, 1, None, 0),
                cand(12, 1, None, 0),
            ],
        );
        assert_eq!(
            interleave(&m)
                .iter()
                .map(|c| c.contact_id.0)
                .collect::<Vec<_>>(),
            vec![10, 20, 11, 21, 12]
        );
    }

    #[test]
    fn pace_buffer_follows_cps() {
        assert_eq!(pace_buffer(1.0, 2_000), 2);
        assert_eq!(pace_buffer(20.0, 2_000), 40);
        assert_eq!(pace_buffer(0.1, 2_000), 1);
    }
}
