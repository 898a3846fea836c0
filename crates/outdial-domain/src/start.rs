//! Starting one attempt of an admitted contact (product §5 "One attempt"): what to do, decided
//! from facts read beforehand — [`decide_start`], a pure function the dialer executes in one
//! place.
//!
//! The checks, in order:
//! 1. **DNC** (§5.1): one of the contact's numbers is on its organization's suppression
//!    list → [`StartDecision::Suppressed`].
//! 2. **Number** (§5.4): attempt index `a` dials `phone_numbers[a / per_number]`; past the
//!    list → [`StartDecision::Exhausted`].
//! 3. **Window** (§5.2), for the number chosen: every zone of its key must be inside the
//!    campaign's window → else [`StartDecision::WindowClosed`], due at the next opening
//!    (plus jitter). Direct calls (no campaign) bypass windows.
//! 4. **Caller ID** (§5.5): [`select_did`] among the usable DIDs → none is
//!    [`StartDecision::NoCallerId`] (a campaign then auto-pauses).
//! 5. Otherwise [`StartDecision::Dial`]. The SIP channel (§5.3) is the executor's: it is held
//!    since admission, or taken again when the admission is old.
//!
//! The number is chosen before the window is checked because the window is the called
//! party's: a contact's second number is dialed in its own zone, not in the first number's.

use chrono::{DateTime, Duration, Utc};

use crate::contact::{PhoneChoice, RetryPolicy, select_phone};
use crate::did::{DidCandidate, select_did};
use crate::ids::DidId;
use crate::phone::E164;
use crate::window::CallingWindow;

/// What a campaign contributes to the decision (a direct call has none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CampaignTerms<'a> {
    /// its calling window, already clipped to the legal one
    pub window: &'a CallingWindow,
    /// attempts on each number before the next one (product §12: 2)
    pub max_attempts_per_phone_number: u32,
    /// caller IDs it may call from; empty = any of the organization's
    pub caller_ids: &'a [E164],
}

/// Everything [`decide_start`] decides on, read by the dialer before it writes anything.
#[derive(Debug, Clone, PartialEq)]
pub struct StartFacts<'a> {
    /// one of the contact's numbers is on its organization's suppression list
    pub suppressed: bool,
    /// the contact's numbers, in dialing order
    pub phone_numbers: &'a [E164],
    /// each number's time-zone key (`&`-joined IANA zones), same order
    pub phone_timezones: &'a [String],
    /// attempts made so far = the index of this attempt
    pub attempt_index: u32,
    /// the campaign's terms; `None` for a direct call
    pub campaign: Option<CampaignTerms<'a>>,
    /// the organization's caller IDs as selection sees them ([`DidCandidate`])
    pub dids: &'a [DidCandidate],
    /// lowest usable caller-ID score (`dialer.did_score_threshold`)
    pub threshold: f64,
    /// the injected clock's now: windows and warming ramps are judged at it
    pub now: DateTime<Utc>,
    /// random delay added to a window opening, so openings do not burst
    pub jitter: Duration,
    /// how long a direct call without a usable caller ID waits (`dialer.backpressure_requeue_ms`)
    pub backpressure: Duration,
}

/// What to do with an admitted contact.
#[derive(Debug, Clone, PartialEq)]
pub enum StartDecision {
    /// On the suppression list: `cancelled` (reason `dnc`), no call.
    Suppressed,
    /// No number left for this attempt index: `exhausted` (reason `no_numbers_left`).
    Exhausted,
    /// The number to dial is outside its window now (or its zone key is unknown): back to
    /// `queued`, due `retry_at` — its zones' next opening plus jitter, or a day later when
    /// they never open together.
    WindowClosed {
        /// when it is due again
        retry_at: DateTime<Utc>,
    },
    /// No usable caller ID: back to `queued`, due `retry_at` (now for a campaign, which
    /// pauses; after the backpressure delay for a direct call).
    NoCallerId {
        /// when it is due again
        retry_at: DateTime<Utc>,
    },
    /// Dial number `number_index` (`to`) from caller ID `did` (`from`).
    Dial {
        /// index into the contact's numbers
        number_index: usize,
        /// the number to dial
        to: E164,
        /// the chosen caller ID (product §5.5)
        did: DidId,
        /// the caller ID's number, sent as `From`
        from: E164,
    },
}

/// Decides what starting the contact described by `f` does (module docs: DNC → number →
/// window → caller ID → dial).
pub fn decide_start(f: &StartFacts<'_>) -> StartDecision {
    if f.suppressed {
        return StartDecision::Suppressed;
    }
    let per_number = f
        .campaign
        .map_or(RetryPolicy::default().max_attempts_per_phone_number, |c| {
            c.max_attempts_per_phone_number
        });
    let number_index = match select_phone(f.phone_numbers.len(), f.attempt_index, per_number) {
        PhoneChoice::Dial { index } => index,
        PhoneChoice::Exhausted => return StartDecision::Exhausted,
    };
    let to = &f.phone_numbers[number_index];
    if let Some(c) = &f.campaign {
        // A number without a zone key, or with one that does not parse, is never open.
        let key = f
            .phone_timezones
            .get(number_index)
            .map_or("", String::as_str);
        if !c.window.is_open_for_key(key, f.now) {
            let opening = c
                .window
                .next_opening_for_key(key, f.now)
                .unwrap_or(f.now + Duration::days(1));
            return StartDecision::WindowClosed {
                retry_at: opening + f.jitter,
            };
        }
    }
    let caller_ids = f.campaign.map_or(&[][..], |c| c.caller_ids);
    match select_did(f.dids, to.area_code(), caller_ids, f.threshold) {
        Some(did) => StartDecision::Dial {
            number_index,
            to: to.clone(),
            did: did.id,
            from: did.e164.clone(),
        },
        None => StartDecision::NoCallerId {
            retry_at: if f.campaign.is_some() {
                f.now
            } else {
                f.now + f.backpressure
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::did::DidState;
    use crate::phone::{number_timezone_key, parse_timezone_key};

    /// 02:30 UTC on Wednesday 2026-01-07: 21:30 in New York (closed), 20:30 in Chicago,
    /// 18:30 in Los Angeles (open).
    fn evening() -> DateTime<Utc> {
        "2026-01-07T02:30:00Z".parse().expect("timestamp")
    }

    fn did(id: i64, e164: &str) -> DidCandidate {
        DidCandidate {
            id: DidId(id),
            e164: E164::parse(e164).expect("a valid test number"),
            state: DidState::Active,
            score: 1.0,
            last_used_at: None,
            within_ramp: true,
        }
    }

    fn facts<'a>(
        numbers: &'a [E164],
        zones: &'a [String],
        attempt_index: u32,
        window: &'a CallingWindow,
        dids: &'a [DidCandidate],
        now: DateTime<Utc>,
    ) -> StartFacts<'a> {
        StartFacts {
            suppressed: false,
            phone_numbers: numbers,
            phone_timezones: zones,
            attempt_index,
            campaign: Some(CampaignTerms {
                window,
                max_attempts_per_phone_number: 1,
                caller_ids: &[],
            }),
            dids,
            threshold: 0.7,
            now,
            jitter: Duration::zero(),
            backpressure: Duration::seconds(5),
        }
    }

    fn keys(numbers: &[E164], stated: Option<&str>) -> Vec<String> {
        numbers
            .iter()
            .map(|n| number_timezone_key(n.as_str(), stated, "America/Los_Angeles"))
            .collect()
    }

    fn nums(raw: &[&str]) -> Vec<E164> {
        raw.iter()
            .map(|r| E164::parse(r).expect("a valid test number"))
            .collect()
    }

    #[test]
    fn a_second_number_is_checked_in_its_own_zone() {
        let window = CallingWindow::voice_legal();
        let numbers = nums(&["+14155550100", "+12125550100"]);
        let zones = keys(&numbers, None);
        let dids = [did(1, "+13125550001")];
        // The first number (Pacific, 18:30) is dialed; the second (Eastern, 21:30) is not.
        let first = decide_start(&facts(&numbers, &zones, 0, &window, &dids, evening()));
        assert!(
            matches!(
                first,
                StartDecision::Dial {
                    number_index: 0,
                    ..
                }
            ),
            "{first:?}"
        );
        let second = decide_start(&facts(&numbers, &zones, 1, &window, &dids, evening()));
        assert_eq!(
            second,
            StartDecision::WindowClosed {
                retry_at: "2026-01-07T13:00:00Z".parse().expect("08:00 in New York")
            }
        );
    }

    #[test]
    fn a_stated_zone_narrows_the_area_codes_hours() {
        let window = CallingWindow::voice_legal();
        let dids = [did(1, "+13125550001")];
        // A 212 number said to be in Los Angeles: closed while New York is (21:30).
        let ny = nums(&["+12125550100"]);
        let said_la = keys(&ny, Some("America/Los_Angeles"));
        assert!(matches!(
            decide_start(&facts(&ny, &said_la, 0, &window, &dids, evening())),
            StartDecision::WindowClosed { .. }
        ));
        // A 415 number said to be in New York: closed at 08:00 New York (05:00 Pacific),
        // open from 08:00 Pacific.
        let la = nums(&["+14155550100"]);
        let said_ny = keys(&la, Some("America/New_York"));
        let ny_morning: DateTime<Utc> = "2026-01-07T13:00:00Z".parse().expect("ts");
        assert_eq!(
            decide_start(&facts(&la, &said_ny, 0, &window, &dids, ny_morning)),
            StartDecision::WindowClosed {
                retry_at: "2026-01-07T16:00:00Z"
                    .parse()
                    .expect("08:00 in Los Angeles")
            }
        );
    }

    #[test]
    fn the_window_follows_each_zones_dst() {
        // 2026-03-08: the US moves to daylight time at 02:00 local. 12:30 UTC is 08:30 EDT
        // (open) but 04:30 PST→PDT in Los Angeles (closed); a number keyed to both opens at
        // 08:00 PDT = 15:00 UTC.
        let window = CallingWindow::voice_legal();
        let dids = [did(1, "+13125550001")];
        let numbers = nums(&["+14155550100"]);
        let both = keys(&numbers, Some("America/New_York"));
        let at: DateTime<Utc> = "2026-03-08T12:30:00Z".parse().expect("ts");
        assert_eq!(
            decide_start(&facts(&numbers, &both, 0, &window, &dids, at)),
            StartDecision::WindowClosed {
                retry_at: "2026-03-08T15:00:00Z".parse().expect("08:00 PDT")
            }
        );
        let ny = nums(&["+12125550100"]);
        assert!(matches!(
            decide_start(&facts(&ny, &keys(&ny, None), 0, &window, &dids, at)),
            StartDecision::Dial { .. }
        ));
    }

    #[test]
    fn direct_calls_bypass_windows_and_wait_for_a_caller_id() {
        let numbers = nums(&["+12125550100"]);
        let zones = keys(&numbers, None);
        let window = CallingWindow::voice_legal();
        let mut f = facts(&numbers, &zones, 0, &window, &[], evening());
        f.campaign = None;
        assert_eq!(
            decide_start(&f),
            StartDecision::NoCallerId {
                retry_at: evening() + Duration::seconds(5)
            }
        );
        let dids = [did(1, "+13125550001")];
        f.dids = &dids;
        assert!(matches!(decide_start(&f), StartDecision::Dial { .. }));
    }

    fn zone_strategy() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Phoenix",
            "America/Los_Angeles",
            "Pacific/Honolulu",
        ])
    }

    fn number_strategy() -> impl Strategy<Value = E164> {
        prop::sample::select(vec!["212", "312", "303", "602", "415", "808", "907"])
            .prop_map(|npa| E164::parse(&format!("+1{npa}5550100")).expect("number"))
    }

    proptest! {
        /// Whatever the facts: DNC first; a dial is of the number the attempt index maps to,
        /// inside the window of that number's zones, from a usable caller ID in the
        /// campaign's list; a closed window re-queues to a time when the window is open.
        #[test]
        fn decisions_keep_the_rules(
            suppressed in any::<bool>(),
            numbers in prop::collection::vec(number_strategy(), 0..4),
            stated in prop::option::of(zone_strategy()),
            attempt_index in 0u32..8,
            per_number in 1u32..3,
            minutes in 0i64..(14 * 24 * 60),
            scores in prop::collection::vec(0.0f64..1.0, 0..4),
            restrict in any::<bool>(),
        ) {
            let now = "2026-03-01T00:00:00Z".parse::<DateTime<Utc>>().expect("ts")
                + Duration::minutes(minutes);
            let zones = keys(&numbers, stated);
            let window = CallingWindow::voice_legal();
            let dids: Vec<DidCandidate> = scores
                .iter()
                .enumerate()
                .map(|(i, s)| DidCandidate { score: *s, ..did(i as i64, &format!("+1312555{i:04}")) })
                .collect();
            let caller_ids: Vec<E164> = if restrict {
                dids.iter().take(1).map(|d| d.e164.clone()).collect()
            } else {
                Vec::new()
            };
            let f = StartFacts {
                suppressed,
                phone_numbers: &numbers,
                phone_timezones: &zones,
                attempt_index,
                campaign: Some(CampaignTerms {
                    window: &window,
                    max_attempts_per_phone_number: per_number,
                    caller_ids: &caller_ids,
                }),
                dids: &dids,
                threshold: 0.7,
                now,
                jitter: Duration::zero(),
                backpressure: Duration::seconds(5),
            };
            let index = (attempt_index / per_number) as usize;
            match decide_start(&f) {
                StartDecision::Suppressed => prop_assert!(suppressed),
                StartDecision::Exhausted => {
                    prop_assert!(!suppressed);
                    prop_assert!(index >= numbers.len());
                }
                StartDecision::WindowClosed { retry_at } => {
                    prop_assert!(!suppressed && index < numbers.len());
                    let tzs = parse_timezone_key(&zones[index]).expect("key");
                    prop_assert!(!window.is_open_in_all(&tzs, now));
                    prop_assert!(retry_at > now);
                    prop_assert!(window.is_open_in_all(&tzs, retry_at));
                }
                StartDecision::NoCallerId { retry_at } => {
                    prop_assert!(!suppressed && index < numbers.len());
                    prop_assert_eq!(retry_at, now);
                    prop_assert!(!dids.iter().any(|d| d.is_usable(0.7)
                        && (caller_ids.is_empty() || caller_ids.contains(&d.e164))));
                }
                StartDecision::Dial { number_index, to, did, from } => {
                    prop_assert!(!suppressed);
                    prop_assert_eq!(number_index, index);
                    prop_assert_eq!(&to, &numbers[index]);
                    let tzs = parse_timezone_key(&zones[index]).expect("key");
                    prop_assert!(window.is_open_in_all(&tzs, now));
                    let d = dids.iter().find(|d| d.id == did).expect("a known DID");
                    prop_assert_eq!(&d.e164, &from);
                    prop_assert!(d.is_usable(0.7));
                    prop_assert!(caller_ids.is_empty() || caller_ids.contains(&from));
                }
            }
        }
    }
}
