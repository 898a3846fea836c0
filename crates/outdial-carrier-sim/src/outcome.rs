//! Pure part of the simulator: outcome names, weighted draws, and the timeline of status
//! callbacks each outcome produces. No I/O, no clock; times are simulated milliseconds.

use std::collections::BTreeMap;

use rand::Rng;

/// How a simulated call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallOutcome {
    /// A human answers and talks 20..=180 simulated seconds; `completed`, `AnsweredBy=human`.
    Human,
    /// A human answers and hangs up after 1..=8 simulated seconds.
    HumanHangup,
    /// An answering machine picks up for 15..=40 simulated seconds;
    /// `AnsweredBy=machine_end_beep`.
    Machine,
    /// Rings `no_answer_ring_s` simulated seconds, then `no-answer`.
    NoAnswer,
    /// `busy` after the ring time (SIP 486).
    Busy,
    /// `failed` after the ring time (SIP 503, a carrier-side failure).
    Failed,
    /// `initiated`/`ringing`, then nothing: the engine's completion timeout must catch it.
    Silent,
    /// A human answers, talks 5..=30 simulated seconds, and the call is reported as spam:
    /// `completed`, `AnsweredBy=human`, `SpamFlagged=true`.
    SpamReported,
}

impl CallOutcome {
    /// Every call outcome, in declaration order (each a name `mix` can weight).
    pub const ALL: [Self; 8] = [
        Self::Human,
        Self::HumanHangup,
        Self::Machine,
        Self::NoAnswer,
        Self::Busy,
        Self::Failed,
        Self::Silent,
        Self::SpamReported,
    ];

    /// The name used in `mix`, `/sim/script`, `/sim/calls` and metrics (`"no_answer"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::HumanHangup => "human_hangup",
            Self::Machine => "machine",
            Self::NoAnswer => "no_answer",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::Silent => "silent",
            Self::SpamReported => "spam_reported",
        }
    }

    /// The outcome called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// Simulated talk time in seconds for answered outcomes, `None` for the others.
    pub(crate) fn talk_range_s(self) -> Option<std::ops::RangeInclusive<u32>> {
        match self {
            Self::Human => Some(20..=180),
            Self::HumanHangup => Some(1..=8),
            Self::Machine => Some(15..=40),
            Self::SpamReported => Some(5..=30),
            Self::NoAnswer | Self::Busy | Self::Failed | Self::Silent => None,
        }
    }
}

/// How a simulated message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SmsOutcome {
    /// `sending` → `sent` → `delivered`.
    Delivered,
    /// `sending` → `sent` → `undelivered` with `ErrorCode=30003` (unreachable handset).
    Undelivered,
    /// `sending` → `failed` with `ErrorCode=30005` (unknown handset); never `sent`.
    Failed,
}

impl SmsOutcome {
    /// Every message outcome, in declaration order (each a name `sms_mix` can weight).
    pub const ALL: [Self; 3] = [Self::Delivered, Self::Undelivered, Self::Failed];

    /// The name used in `sms_mix`, `/sim/script` and `/sim/calls`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
        }
    }

    /// The outcome called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// A validated weighted mix over outcomes `T`, drawn in the (sorted) order of the config map
/// so one seed always gives the same sequence.
#[derive(Debug, Clone)]
pub(crate) struct Mix<T> {
    entries: Vec<(T, f64)>,
    total: f64,
}

impl<T: Copy> Mix<T> {
    /// Builds the mix from `weights` (name → weight). Errors name the bad entry: an unknown
    /// name, a negative or non-finite weight, or all weights zero.
    pub(crate) fn new(
        what: &str,
        weights: &BTreeMap<String, f64>,
        from_name: impl Fn(&str) -> Option<T>,
    ) -> Result<Self, String> {
        let mut entries = Vec::with_capacity(weights.len());
        for (name, &weight) in weights {
            let outcome =
                from_name(name).ok_or_else(|| format!("{what}: unknown outcome {name:?}"))?;
            if !weight.is_finite() || weight < 0.0 {
                return Err(format!(
                    "{what}: weight of {name:?} must be a finite number ≥ 0, got {weight}"
                ));
            }
            if weight > 0.0 {
                entries.push((outcome, weight));
            }
        }
        let total = entries.iter().map(|(_, w)| w).sum::<f64>();
        if entries.is_empty() || total <= 0.0 {
            return Err(format!("{what}: at least one weight must be > 0"));
        }
        Ok(Self { entries, total })
    }

    /// Draws an outcome, each with probability weight / total.
    pub(crate) fn draw(&self, rng: &mut impl Rng) -> T {
        let mut point = rng.random::<f64>() * self.total;
        for &(outcome, weight) in &self.entries {
            if point < weight {
                return outcome;
            }
            point -= weight;
        }
        // Rounding can leave `point` a hair above the last bucket.
        self.entries[self.entries.len() - 1].0
    }
}

/// Everything random about one call, drawn once when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallPlan {
    pub(crate) outcome: CallOutcome,
    /// Simulated ring time before answer / busy / failure, ms.
    pub(crate) ring_ms: u64,
    /// Simulated talk time, whole seconds (0 when not answered).
    pub(crate) talk_s: u32,
}

impl CallPlan {
    pub(crate) fn draw(
        outcome: CallOutcome,
        ring_ms: std::ops::RangeInclusive<u64>,
        rng: &mut impl Rng,
    ) -> Self {
        let ring_ms = rng.random_range(ring_ms);
        let talk_s = outcome
            .talk_range_s()
            .map_or(0, |range| rng.random_range(range));
        Self {
            outcome,
            ring_ms,
            talk_s,
        }
    }
}

/// One status callback in a call's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// Simulated ms to wait after the previous step before this one.
    pub(crate) wait_ms: u64,
    /// `CallStatus` value.
    pub(crate) status: &'static str,
    /// The `StatusCallbackEvent` that asks for this step; `None` for the final step, which is
    /// always sent.
    pub(crate) event: Option<&'static str>,
    /// Final-only parameters: `CallDuration` (s), `SipResponseCode`, `AnsweredBy` (when
    /// machine detection was requested).
    pub(crate) fin: Option<Final>,
}

/// Parameters of a final call callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Final {
    pub(crate) duration_s: u32,
    pub(crate) sip: u16,
    pub(crate) answered_by: Option<&'static str>,
    pub(crate) spam: bool,
}

/// The callbacks `plan` produces, in order; `no_answer_ring_s` is how long an unanswered
/// call rings. A `silent` call has no final step.
pub(crate) fn call_timeline(
    plan: CallPlan,
    machine_detection: bool,
    no_answer_ring_s: u64,
) -> Vec<Step> {
    let step = |wait_ms, status, event| Step {
        wait_ms,
        status,
        event: Some(event),
        fin: None,
    };
    let spam = plan.outcome == CallOutcome::SpamReported;
    let fin = |wait_ms, status, duration_s, sip, answered_by: Option<&'static str>| Step {
        wait_ms,
        status,
        event: None,
        fin: Some(Final {
            duration_s,
            sip,
            answered_by: answered_by.filter(|_| machine_detection),
            spam,
        }),
    };
    let talk_ms = u64::from(plan.talk_s) * 1000;
    match plan.outcome {
        CallOutcome::Human
        | CallOutcome::HumanHangup
        | CallOutcome::Machine
        | CallOutcome::SpamReported => {
            let answered_by = if plan.outcome == CallOutcome::Machine {
                "machine_end_beep"
            } else {
                "human"
            };
            vec![
                step(0, "initiated", "initiated"),
                step(0, "ringing", "ringing"),
                step(plan.ring_ms, "in-progress", "answered"),
                fin(talk_ms, "completed", plan.talk_s, 200, Some(answered_by)),
            ]
        }
        CallOutcome::NoAnswer => vec![
            step(0, "initiated", "initiated"),
            step(0, "ringing", "ringing"),
            fin(
                no_answer_ring_s.saturating_mul(1000),
                "no-answer",
                0,
                487,
                None,
            ),
        ],
        CallOutcome::Busy => vec![
            step(0, "initiated", "initiated"),
            fin(plan.ring_ms, "busy", 0, 486, None),
        ],
        CallOutcome::Failed => vec![
            step(0, "initiated", "initiated"),
            fin(plan.ring_ms, "failed", 0, 503, None),
        ],
        CallOutcome::Silent => vec![
            step(0, "initiated", "initiated"),
            step(0, "ringing", "ringing"),
        ],
    }
}

/// One message status callback: (simulated ms to wait first, `MessageStatus`, `ErrorCode`).
pub(crate) fn sms_timeline(
    outcome: SmsOutcome,
    delay_ms: u64,
) -> Vec<(u64, &'static str, Option<u32>)> {
    match outcome {
        SmsOutcome::Delivered => vec![
            (0, "sending", None),
            (delay_ms, "sent", None),
            (delay_ms, "delivered", None),
        ],
        SmsOutcome::Undelivered => {
            vec![
                (0, "sending", None),
                (delay_ms, "sent", None),
                (delay_ms, "undelivered", Some(30003)),
            ]
        }
        SmsOutcome::Failed => vec![(0, "sending", None), (delay_ms, "failed", Some(30005))],
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn weights(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn names_round_trip() {
        for o in CallOutcome::ALL {
            assert_eq!(CallOutcome::from_name(o.as_str()), Some(o));
        }
        for o in SmsOutcome::ALL {
            assert_eq!(SmsOutcome::from_name(o.as_str()), Some(o));
        }
        assert_eq!(CallOutcome::from_name("voicemail"), None);
    }

    #[test]
    fn mix_rejects_bad_weights() {
        let mk = |pairs: &[(&str, f64)]| {
            Mix::new("mix", &weights(pairs), CallOutcome::from_name).map(|_| ())
        };
        assert!(mk(&[("human", 1.0)]).is_ok());
        assert!(
            mk(&[("humans", 1.0)])
                .expect_err("unknown")
                .contains("humans")
        );
        assert!(mk(&[("human", -1.0)]).is_err());
        assert!(mk(&[("human", f64::NAN)]).is_err());
        assert!(mk(&[("human", 0.0)]).is_err());
        assert!(mk(&[]).is_err());
    }

    #[test]
    fn mix_draws_in_proportion_and_is_seeded() {
        let mix = Mix::new(
            "mix",
            &weights(&[("human", 3.0), ("busy", 1.0), ("silent", 0.0)]),
            CallOutcome::from_name,
        )
        .expect("valid mix");
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<_> = (0..4000).map(|_| mix.draw(&mut rng)).collect();
        let humans = draws.iter().filter(|o| **o == CallOutcome::Human).count();
        assert!((2800..3200).contains(&humans), "{humans}");
        assert!(!draws.contains(&CallOutcome::Silent));
        let mut again = StdRng::seed_from_u64(7);
        assert!(draws.iter().all(|o| *o == mix.draw(&mut again)));
    }

    #[test]
    fn plans_stay_in_range() {
        let mut rng = StdRng::seed_from_u64(1);
        for outcome in CallOutcome::ALL {
            for _ in 0..200 {
                let plan = CallPlan::draw(outcome, 100..=200, &mut rng);
                assert!((100..=200).contains(&plan.ring_ms));
                match outcome.talk_range_s() {
                    Some(range) => assert!(range.contains(&plan.talk_s)),
                    None => assert_eq!(plan.talk_s, 0),
                }
            }
        }
    }

    #[test]
    fn timelines() {
        let plan = |outcome| CallPlan {
            outcome,
            ring_ms: 5000,
            talk_s: 42,
        };
        let human = call_timeline(plan(CallOutcome::Human), true, 25);
        let statuses: Vec<_> = human.iter().map(|s| s.status).collect();
        assert_eq!(
            statuses,
            ["initiated", "ringing", "in-progress", "completed"]
        );
        assert_eq!(human[2].wait_ms, 5000);
        assert_eq!(human[3].wait_ms, 42_000);
        assert_eq!(
            human[3].fin,
            Some(Final {
                duration_s: 42,
                sip: 200,
                answered_by: Some("human"),
                spam: false,
            })
        );

        let machine = call_timeline(plan(CallOutcome::Machine), false, 25);
        assert_eq!(
            machine[3].fin.as_ref().and_then(|f| f.answered_by),
            None,
            "no AMD requested"
        );
        let machine = call_timeline(plan(CallOutcome::Machine), true, 25);
        assert_eq!(
            machine[3].fin.as_ref().and_then(|f| f.answered_by),
            Some("machine_end_beep")
        );

        let no_answer = call_timeline(plan(CallOutcome::NoAnswer), true, 25);
        assert_eq!(
            no_answer.last().map(|s| (s.status, s.wait_ms)),
            Some(("no-answer", 25_000))
        );
        let busy = call_timeline(plan(CallOutcome::Busy), true, 25);
        assert_eq!(
            busy.last().map(|s| (s.status, s.wait_ms)),
            Some(("busy", 5000))
        );
        assert_eq!(
            call_timeline(plan(CallOutcome::Failed), true, 25)
                .last()
                .map(|s| s.status),
            Some("failed")
        );
        let silent = call_timeline(plan(CallOutcome::Silent), true, 25);
        assert!(silent.iter().all(|s| s.fin.is_none()));

        for outcome in CallOutcome::ALL {
            let steps = call_timeline(plan(outcome), true, 25);
            let finals = steps.iter().filter(|s| s.fin.is_some()).count();
            assert_eq!(
                finals,
                usize::from(outcome != CallOutcome::Silent),
                "{outcome:?}"
            );
            assert!(steps.iter().all(|s| s.fin.is_some() == s.event.is_none()));
        }
    }

    #[test]
    fn sms_timelines() {
        let statuses = |o| {
            sms_timeline(o, 10)
                .into_iter()
                .map(|(_, s, e)| (s, e))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            statuses(SmsOutcome::Delivered),
            [("sending", None), ("sent", None), ("delivered", None)]
        );
        assert_eq!(
            statuses(SmsOutcome::Undelivered).last(),
            Some(&("undelivered", Some(30003)))
        );
        assert_eq!(
            statuses(SmsOutcome::Failed),
            [("sending", None), ("failed", Some(30005))]
        );
    }
}
