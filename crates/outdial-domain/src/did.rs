//! Caller IDs (DIDs): lifecycle states and selection for a call or a text (product §5.5, §7).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::text::stored_text;

use crate::health::HealthAction;
use crate::ids::DidId;
use crate::phone::E164;

/// Lifecycle state of a DID (product §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DidState {
    /// Back from cooldown and ramping up: takes a capped, rising share of calls.
    Warming,
    /// In full rotation.
    Active,
    /// Out of rotation until its cooldown ends.
    Cooling,
    /// Permanently out of rotation.
    Burned,
}

stored_text!(DidState, "DID state", {
    Warming => "warming",
    Active => "active",
    Cooling => "cooling",
    Burned => "burned",
});

impl DidState {
    /// The states in which a DID may place a call or send a text at all (product §5.5):
    /// `active`, and `warming` within its ramp ([`DidCandidate::is_usable`]). The store's
    /// SQL prefilters select these states.
    pub const USABLE: [DidState; 2] = [Self::Active, Self::Warming];
}

/// Lifecycle timing (product §7, §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfig {
    /// How long a cooled-down DID stays out of rotation, ms (2 h).
    pub cooldown_ms: i64,
    /// How long a DID warms before it is fully active again, ms (1 h).
    pub warming_ms: i64,
    /// Calls a warming DID may take over its whole warming period; the allowance rises
    /// linearly from 1 to this (20).
    pub warming_max_calls: u32,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            cooldown_ms: 2 * 3_600_000,
            warming_ms: 3_600_000,
            warming_max_calls: 20,
        }
    }
}

/// A state change and the timestamps that go with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DidTransition {
    /// The new state.
    pub to: DidState,
    /// For `Cooling`: when the cooldown ends.
    pub cooldown_until: Option<DateTime<Utc>>,
    /// For `Warming`: when the DID becomes fully active.
    pub warming_until: Option<DateTime<Utc>>,
    /// For `Warming`: scoring restarts here (only calls since the cooldown count).
    pub scored_since: Option<DateTime<Utc>>,
}

impl DidTransition {
    fn to(to: DidState) -> Self {
        Self {
            to,
            cooldown_until: None,
            warming_until: None,
            scored_since: None,
        }
    }
}

/// The state change a health action causes (product §7): cooldown takes an active or warming
/// DID out for `cooldown_ms`; burn is permanent; others change nothing. Cooling and burned
/// DIDs are not re-judged.
pub fn apply_health_action(
    state: DidState,
    action: HealthAction,
    now: DateTime<Utc>,
    cfg: &LifecycleConfig,
) -> Option<DidTransition> {
    match (state, action) {
        (DidState::Active | DidState::Warming, HealthAction::Cooldown) => Some(DidTransition {
            cooldown_until: Some(now + Duration::milliseconds(cfg.cooldown_ms)),
            ..DidTransition::to(DidState::Cooling)
        }),
        (DidState::Active | DidState::Warming, HealthAction::Burn) => {
            Some(DidTransition::to(DidState::Burned))
        }
        _ => None,
    }
}

/// The lifecycle job's step for one DID (product §7, run every 60 s): `cooling → warming` once
/// the cooldown has ended (scoring restarts then), `warming → active` once warming has.
pub fn lifecycle_step(
    state: DidState,
    cooldown_until: Option<DateTime<Utc>>,
    warming_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    cfg: &LifecycleConfig,
) -> Option<DidTransition> {
    match state {
        DidState::Cooling if cooldown_until.is_none_or(|t| t <= now) => Some(DidTransition {
            warming_until: Some(now + Duration::milliseconds(cfg.warming_ms)),
            scored_since: Some(now),
            ..DidTransition::to(DidState::Warming)
        }),
        DidState::Warming if warming_until.is_none_or(|t| t <= now) => {
            Some(DidTransition::to(DidState::Active))
        }
        _ => None,
    }
}

/// How many calls a warming DID may have taken by `now`: rises linearly from 1 at the start
/// of warming to `warming_max_calls` at its end (the seed's fix for health-score
/// oscillation: ramp a DID back in instead of hammering it).
pub fn warming_allowance(
    warming_until: DateTime<Utc>,
    now: DateTime<Utc>,
    cfg: &LifecycleConfig,
) -> u32 {
    let total = cfg.warming_ms.max(1);
    let elapsed = (total - (warming_until - now).num_milliseconds()).clamp(0, total);
    let max = i64::from(cfg.warming_max_calls.max(1));
    let allowed = 1 + (max - 1) * elapsed / total;
    u32::try_from(allowed).unwrap_or(u32::MAX)
}

/// The settings of the usable-caller-ID rule (product §5.5, §7), from the fleet's config:
/// the score threshold (`dialer.did_score_threshold`), the minimum sample before a score
/// counts (`health.min_calls`) and the lifecycle timings behind the warming ramp.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CallerIdRule {
    /// lowest usable score, in `[0, 1]` (0.7)
    pub threshold: f64,
    /// scored calls before a DID's score counts (10)
    pub min_calls: u32,
    /// cooldown, warming period and ramp cap
    pub lifecycle: LifecycleConfig,
}

/// The score a DID competes with (product §7 minimum sample): its health score once at least
/// `min_calls` of its calls were scored, 1.0 before — one unlucky call cannot take a fresh
/// DID out of rotation before it has a fair sample.
pub fn judged_score(health_score: f64, scored_calls: u32, min_calls: u32) -> f64 {
    if scored_calls >= min_calls {
        health_score
    } else {
        1.0
    }
}

/// Whether a DID in `state` may take one more call now (product §7 warming ramp): a warming DID
/// whose `warming_calls` reached its [`warming_allowance`] may not; any other state may (its
/// state is judged by [`DidCandidate::is_usable`]). A warming DID without an end is not
/// capped.
pub fn within_ramp(
    state: DidState,
    warming_until: Option<DateTime<Utc>>,
    warming_calls: u32,
    now: DateTime<Utc>,
    cfg: &LifecycleConfig,
) -> bool {
    match (state, warming_until) {
        (DidState::Warming, Some(until)) => warming_calls < warming_allowance(until, now, cfg),
        _ => true,
    }
}

/// A DID as selection sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DidCandidate {
    /// Its row id; the lower id wins when all else ties (product §5.5).
    pub id: DidId,
    /// Its E.164 number; a matching NANP area code is preferred (local presence).
    pub e164: E164,
    /// Lifecycle state; only `active` and `warming` DIDs can be chosen.
    pub state: DidState,
    /// Current health score in `[0, 1]`.
    pub score: f64,
    /// Last time it placed a call (voice) or sent a text (SMS); `None` = never.
    pub last_used_at: Option<DateTime<Utc>>,
    /// For warming DIDs: whether it is still within its ramp allowance.
    pub within_ramp: bool,
}

impl DidCandidate {
    /// The usable-caller-ID rule (product §5.5), the one every path applies: state `active`,
    /// or `warming` within its ramp, and a (judged) score ≥ `threshold`. The campaign's
    /// `caller_ids` restriction is applied by [`select_did`] on top.
    pub fn is_usable(&self, threshold: f64) -> bool {
        let state_ok = DidState::USABLE.contains(&self.state)
            && (self.state != DidState::Warming || self.within_ramp);
        state_ok && self.score >= threshold
    }
}

/// Picks the caller ID for a call (product §5.5): DIDs `active` (or `warming` within their
/// ramp) with score ≥ `threshold`; restricted to `caller_ids` when the campaign sets them;
/// local presence first (a DID in the prospect's area code); then the highest score; ties
/// to the least recently used. `None` when no DID qualifies — the campaign then pauses.
pub fn select_did<'a>(
    candidates: &'a [DidCandidate],
    prospect_area_code: Option<&str>,
    caller_ids: &[E164],
    threshold: f64,
) -> Option<&'a DidCandidate> {
    let usable = |d: &&DidCandidate| {
        d.is_usable(threshold) && (caller_ids.is_empty() || caller_ids.contains(&d.e164))
    };
    let local = |d: &&DidCandidate| {
        prospect_area_code.is_some() && d.e164.area_code() == prospect_area_code
    };
    let best = |a: &&'a DidCandidate, b: &&'a DidCandidate| {
        a.score
            .total_cmp(&b.score)
            .then_with(|| b.last_used_at.cmp(&a.last_used_at))
            .then_with(|| b.id.cmp(&a.id))
    };
    candidates
        .iter()
        .filter(usable)
        .filter(local)
        .max_by(best)
        .or_else(|| candidates.iter().filter(usable).max_by(best))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("timestamp")
    }

    fn did(id: i64, e164: &str, state: DidState, score: f64, last: Option<&str>) -> DidCandidate {
        DidCandidate {
            id: DidId(id),
            e164: E164::parse(e164).expect("a valid test number"),
            state,
            score,
            last_used_at: last.map(t),
            within_ramp: true,
        }
    }

    #[test]
    fn prefers_local_presence_then_score_then_lru() {
        let dids = [
            did(
                1,
                "+12125550001",
                DidState::Active,
                0.95,
                Some("2026-07-01T10:00:00Z"),
            ),
            did(
                2,
                "+13125550002",
                DidState::Active,
                0.90,
                Some("2026-07-01T09:00:00Z"),
            ),
            did(
                3,
                "+13125550003",
                DidState::Active,
                0.90,
                Some("2026-07-01T08:00:00Z"),
            ),
            did(4, "+14155550004", DidState::Active, 0.99, None),
        ];
        // Chicago prospect: local DIDs 2 and 3 tie on score → least recently used (3).
        assert_eq!(
            select_did(&dids, Some("312"), &[], 0.7).map(|d| d.id),
            Some(DidId(3))
        );
        // No local DID: highest score.
        assert_eq!(
            select_did(&dids, Some("617"), &[], 0.7).map(|d| d.id),
            Some(DidId(4))
        );
        // Campaign caller_ids restrict the pool before local presence.
        let ids = vec![E164::parse("+12125550001").expect("number")];
        assert_eq!(
            select_did(&dids, Some("312"), &ids, 0.7).map(|d| d.id),
            Some(DidId(1))
        );
    }

    #[test]
    fn never_used_beats_recently_used_on_a_score_tie() {
        let dids = [
            did(
                1,
                "+12125550001",
                DidState::Active,
                1.0,
                Some("2026-07-01T10:00:00Z"),
            ),
            did(2, "+12125550002", DidState::Active, 1.0, None),
        ];
        assert_eq!(
            select_did(&dids, None, &[], 0.7).map(|d| d.id),
            Some(DidId(2))
        );
    }

    #[test]
    fn unhealthy_cooling_burned_and_over_ramp_are_skipped() {
        let mut warming = did(4, "+12125550004", DidState::Warming, 1.0, None);
        warming.within_ramp = false;
        let dids = [
            did(1, "+12125550001", DidState::Active, 0.69, None),
            did(2, "+12125550002", DidState::Cooling, 1.0, None),
            did(3, "+12125550003", DidState::Burned, 1.0, None),
            warming,
        ];
        assert_eq!(select_did(&dids, Some("212"), &[], 0.7), None);
    }

    #[test]
    fn cooldown_warming_active_cycle() {
        let cfg = LifecycleConfig::default();
        let now = t("2026-07-01T10:00:00Z");
        let cool = apply_health_action(DidState::Active, HealthAction::Cooldown, now, &cfg)
            .expect("cools");
        assert_eq!(cool.to, DidState::Cooling);
        assert_eq!(cool.cooldown_until, Some(t("2026-07-01T12:00:00Z")));
        assert_eq!(
            lifecycle_step(
                DidState::Cooling,
                cool.cooldown_until,
                None,
                t("2026-07-01T11:59:00Z"),
                &cfg
            ),
            None
        );
        let warm = lifecycle_step(
            DidState::Cooling,
            cool.cooldown_until,
            None,
            t("2026-07-01T12:00:30Z"),
            &cfg,
        )
        .expect("warms");
        assert_eq!(warm.to, DidState::Warming);
        assert_eq!(warm.scored_since, Some(t("2026-07-01T12:00:30Z")));
        let active = lifecycle_step(
            DidState::Warming,
            None,
            warm.warming_until,
            t("2026-07-01T13:00:30Z"),
            &cfg,
        )
        .expect("active");
        assert_eq!(active.to, DidState::Active);
        assert_eq!(
            apply_health_action(DidState::Burned, HealthAction::Cooldown, now, &cfg),
            None
        );
        assert_eq!(
            apply_health_action(DidState::Active, HealthAction::Burn, now, &cfg).map(|x| x.to),
            Some(DidState::Burned)
        );
    }

    #[test]
    fn warming_allowance_rises_to_its_cap() {
        let cfg = LifecycleConfig::default();
        let until = t("2026-07-01T13:00:00Z");
        assert_eq!(warming_allowance(until, t("2026-07-01T12:00:00Z"), &cfg), 1);
        assert_eq!(
            warming_allowance(until, t("2026-07-01T12:30:00Z"), &cfg),
            10
        );
        assert_eq!(
            warming_allowance(until, t("2026-07-01T13:00:00Z"), &cfg),
            20
        );
        assert_eq!(
            warming_allowance(until, t("2026-07-01T14:00:00Z"), &cfg),
            20
        );
    }
}
