//! Caller-ID (DID) health score and the action it triggers (product §7).
//!
//! Score over the DID's last 50 scored calls:
//!
//! | component | weight | definition |
//! |---|---|---|
//! | answer rate | 0.30 | answered / calls |
//! | call duration | 0.25 | mean duration of answered calls / 60 s, capped at 1 |
//! | human engagement | 0.20 | human-answered / answered |
//! | no-answer trend | 0.15 | 1 − no-answer / calls |
//! | spam clean | 0.10 | 1 − spam-flagged / calls |
//!
//! A DID with no scored calls scores 1.0. Attempts whose number was invalid say nothing about
//! the caller ID and are not scored. Actions: ≥ 0.8 ok, 0.7–0.8 warning, 0.5–0.7 cooldown,
//! < 0.5 burned — but none before `min_calls` scored calls (default 10), so one unlucky call
//! cannot burn a fresh DID.

use serde::{Deserialize, Serialize};

use crate::contact::Disposition;

/// Calls in the scoring window (product §7: last 50).
pub const SCORE_WINDOW: usize = 50;

/// One finished call as the health score sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CallSample {
    /// How the call ended.
    pub disposition: Disposition,
    /// Talk time reported by the carrier, seconds.
    pub duration_s: u32,
    /// Whether the call was flagged as spam (by the carrier or `POST /dids/:id/spam-flags`).
    pub spam_flagged: bool,
}

/// The five components, each in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthComponents {
    /// answered / calls
    pub answer_rate: f64,
    /// mean answered duration / 60 s, capped at 1
    pub duration: f64,
    /// humans / answered
    pub human_engagement: f64,
    /// 1 − no-answer rate
    pub no_answer_trend: f64,
    /// 1 − spam-flag rate
    pub spam_clean: f64,
}

/// A computed score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthScore {
    /// Weighted score in `[0, 1]`.
    pub score: f64,
    /// The components it was weighted from.
    pub components: HealthComponents,
    /// Calls scored (≤ [`SCORE_WINDOW`]).
    pub calls: usize,
}

/// Component weights: answer rate, duration, human engagement, no-answer trend, spam clean.
pub const WEIGHTS: [f64; 5] = [0.30, 0.25, 0.20, 0.15, 0.10];

/// Scores `recent` calls, newest first; only the first [`SCORE_WINDOW`] scorable calls count.
pub fn score(recent: &[CallSample]) -> HealthScore {
    let calls: Vec<&CallSample> = recent
        .iter()
        .filter(|c| c.disposition != Disposition::InvalidNumber)
        .take(SCORE_WINDOW)
        .collect();
    if calls.is_empty() {
        let perfect = HealthComponents {
            answer_rate: 1.0,
            duration: 1.0,
            human_engagement: 1.0,
            no_answer_trend: 1.0,
            spam_clean: 1.0,
        };
        return HealthScore {
            score: 1.0,
            components: perfect,
            calls: 0,
        };
    }
    let n = calls.len() as f64;
    let answered: Vec<&&CallSample> = calls.iter().filter(|c| c.disposition.answered()).collect();
    let humans = answered.iter().filter(|c| c.disposition.human()).count() as f64;
    let no_answer = calls
        .iter()
        .filter(|c| c.disposition == Disposition::NoAnswer)
        .count() as f64;
    let spam = calls.iter().filter(|c| c.spam_flagged).count() as f64;
    let (answer_rate, duration, human_engagement) = if answered.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        let a = answered.len() as f64;
        let mean_s = answered
            .iter()
            .map(|c| f64::from(c.duration_s))
            .sum::<f64>()
            / a;
        (a / n, (mean_s / 60.0).min(1.0), humans / a)
    };
    let components = HealthComponents {
        answer_rate,
        duration,
        human_engagement,
        no_answer_trend: 1.0 - no_answer / n,
        spam_clean: 1.0 - spam / n,
    };
    let parts = [
        components.answer_rate,
        components.duration,
        components.human_engagement,
        components.no_answer_trend,
        components.spam_clean,
    ];
    let score = parts.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum::<f64>();
    HealthScore {
        score: score.clamp(0.0, 1.0),
        components,
        calls: calls.len(),
    }
}

/// Thresholds for [`action`] (product §7, §12).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthThresholds {
    /// At or above: ok (0.8).
    pub ok: f64,
    /// At or above (and below `ok`): warning; also the selection threshold (0.7).
    pub usable: f64,
    /// Below: burned; between this and `usable`: cooldown (0.5).
    pub burn: f64,
    /// No action before this many scored calls (10).
    pub min_calls: u32,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            ok: 0.8,
            usable: 0.7,
            burn: 0.5,
            min_calls: 10,
        }
    }
}

/// What a score means for the DID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthAction {
    /// Too few calls to judge; nothing changes.
    NotEnoughCalls,
    /// Healthy.
    Ok,
    /// Still usable; publish a warning.
    Warning,
    /// Out of rotation for the cooldown period (`did.health.cooldown`).
    Cooldown,
    /// Permanently out (`did.health.burned`).
    Burn,
}

/// The action for `score` (product §7).
pub fn action(score: &HealthScore, t: &HealthThresholds) -> HealthAction {
    if score.calls < t.min_calls as usize {
        HealthAction::NotEnoughCalls
    } else if score.score >= t.ok {
        HealthAction::Ok
    } else if score.score >= t.usable {
        HealthAction::Warning
    } else if score.score >= t.burn {
        HealthAction::Cooldown
    } else {
        HealthAction::Burn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(spec: &[(Disposition, u32, bool, usize)]) -> Vec<CallSample> {
        spec.iter()
            .flat_map(|&(disposition, duration_s, spam_flagged, n)| {
                std::iter::repeat_n(
                    CallSample {
                        disposition,
                        duration_s,
                        spam_flagged,
                    },
                    n,
                )
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn new_did_scores_one() {
        let s = score(&[]);
        assert_eq!((s.score, s.calls), (1.0, 0));
    }

    #[test]
    fn hand_computed_mixed_history() {
        // 20 calls: 8 human (90 s), 2 hangup (6 s), 2 voicemail (20 s), 6 no-answer, 2 busy;
        // 1 of the humans spam-flagged.
        let h = calls(&[
            (Disposition::HumanConnected, 90, true, 1),
            (Disposition::HumanConnected, 90, false, 7),
            (Disposition::HumanHangup, 6, false, 2),
            (Disposition::Voicemail, 20, false, 2),
            (Disposition::NoAnswer, 0, false, 6),
            (Disposition::Busy, 0, false, 2),
        ]);
        let s = score(&h);
        // answered 12/20 = 0.6; mean answered duration (720+12+40)/12 = 64.33 s → 1.0;
        // humans 10/12 = 0.8333; no-answer 1 − 6/20 = 0.7; spam 1 − 1/20 = 0.95.
        // 0.3·0.6 + 0.25·1 + 0.2·0.83333 + 0.15·0.7 + 0.1·0.95 = 0.796667
        assert!(close(s.components.answer_rate, 0.6));
        assert!(close(s.components.duration, 1.0));
        assert!(close(s.components.human_engagement, 10.0 / 12.0));
        assert!(close(s.components.no_answer_trend, 0.7));
        assert!(close(s.components.spam_clean, 0.95));
        assert!(
            close(s.score, 0.18 + 0.25 + 0.2 * 10.0 / 12.0 + 0.105 + 0.095),
            "{}",
            s.score
        );
        assert_eq!(
            action(&s, &HealthThresholds::default()),
            HealthAction::Warning
        );
    }

    #[test]
    fn hand_computed_cooldown_and_burn() {
        // 10 calls: 5 voicemail of 30 s, 5 no-answer.
        // 0.3·0.5 + 0.25·0.5 + 0.2·0 + 0.15·0.5 + 0.1·1 = 0.45 → burn.
        let s = score(&calls(&[
            (Disposition::Voicemail, 30, false, 5),
            (Disposition::NoAnswer, 0, false, 5),
        ]));
        assert!(close(s.score, 0.45), "{}", s.score);
        assert_eq!(action(&s, &HealthThresholds::default()), HealthAction::Burn);
        // 10 calls: 5 human of 30 s, 5 no-answer.
        // 0.3·0.5 + 0.25·0.5 + 0.2·1 + 0.15·0.5 + 0.1·1 = 0.65 → cooldown.
        let s = score(&calls(&[
            (Disposition::HumanConnected, 30, false, 5),
            (Disposition::NoAnswer, 0, false, 5),
        ]));
        assert!(close(s.score, 0.65), "{}", s.score);
        assert_eq!(
            action(&s, &HealthThresholds::default()),
            HealthAction::Cooldown
        );
    }

    #[test]
    fn one_bad_call_does_not_burn_a_fresh_did() {
        let s = score(&calls(&[(Disposition::Failed, 0, true, 1)]));
        assert!(s.score < 0.5);
        assert_eq!(
            action(&s, &HealthThresholds::default()),
            HealthAction::NotEnoughCalls
        );
    }

    #[test]
    fn only_the_last_fifty_count_and_invalid_numbers_are_ignored() {
        // Newest first: 50 perfect calls, then 50 awful ones that fall outside the window.
        let mut h = calls(&[
            (Disposition::InvalidNumber, 0, false, 5),
            (Disposition::HumanConnected, 60, false, 50),
        ]);
        h.extend(calls(&[(Disposition::NoAnswer, 0, true, 50)]));
        let s = score(&h);
        assert_eq!(s.calls, 50);
        assert!(close(s.score, 1.0));
    }
}
