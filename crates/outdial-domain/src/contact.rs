//! Contacts (prospects): statuses, call dispositions, phone-number selection and how an
//! attempt's outcome resolves the contact (SPEC §5.4, §5 "Outcomes and resolution", §6).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where a contact is in its life. Stored as the lowercase text of the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    /// Waiting to be dialed or texted; due once `retry_after` has passed.
    Queued,
    /// Admitted by a dispatch cycle: holds an org slot, a global slot and a channel, waiting
    /// for its campaign's next tick (SPEC §4 "Active calls" counts it).
    Locked,
    /// A call attempt is in progress (voice).
    Dialing,
    /// Reached a final successful outcome.
    Completed,
    /// Every phone number used up its attempts without success.
    Exhausted,
    /// Failed permanently (every number invalid, or SMS rejected/undelivered).
    Failed,
    /// Skipped: on the suppression (DNC) list, or its campaign was cancelled.
    Cancelled,
    /// SMS handed to the carrier, not yet accepted.
    Sending,
    /// SMS accepted by the carrier, awaiting the delivery receipt (still in progress).
    Sent,
    /// SMS delivery confirmed.
    Delivered,
}

impl ContactStatus {
    /// Every status, for reports that list zero counts too.
    pub const ALL: [ContactStatus; 10] = [
        Self::Queued,
        Self::Locked,
        Self::Dialing,
        Self::Completed,
        Self::Exhausted,
        Self::Failed,
        Self::Cancelled,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
    ];

    /// The stored text (`"queued"`, `"locked"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Locked => "locked",
            Self::Dialing => "dialing",
            Self::Completed => "completed",
            Self::Exhausted => "exhausted",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
        }
    }

    /// Whether nothing more will happen to the contact.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Exhausted | Self::Failed | Self::Cancelled | Self::Delivered
        )
    }

    /// Whether the contact counts as an active call for the limits (SPEC §4).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Locked | Self::Dialing)
    }
}

impl std::str::FromStr for ContactStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown contact status {s:?}"))
    }
}

impl std::fmt::Display for ContactStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one voice call attempt ended (SPEC §5 "Outcomes and resolution").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// A human answered and the agent engaged.
    HumanConnected,
    /// A human answered and hung up quickly.
    HumanHangup,
    /// Answering-machine detection found voicemail.
    Voicemail,
    /// It rang and nobody picked up.
    NoAnswer,
    /// Busy signal.
    Busy,
    /// Transient failure: provider 5xx, network, rate limit, carrier-reported failure.
    Failed,
    /// Permanent failure: the number is invalid or unallocated.
    InvalidNumber,
    /// No completion signal within the completion timeout (30 min by default).
    Timeout,
}

impl Disposition {
    /// Every disposition, for reports.
    pub const ALL: [Disposition; 8] = [
        Self::HumanConnected,
        Self::HumanHangup,
        Self::Voicemail,
        Self::NoAnswer,
        Self::Busy,
        Self::Failed,
        Self::InvalidNumber,
        Self::Timeout,
    ];

    /// The stored text (`"human_connected"`, …), also the suffix of the
    /// `campaign.call.<disposition>` event.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HumanConnected => "human_connected",
            Self::HumanHangup => "human_hangup",
            Self::Voicemail => "voicemail",
            Self::NoAnswer => "no_answer",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::InvalidNumber => "invalid_number",
            Self::Timeout => "timeout",
        }
    }

    /// Whether the call was answered (by a human or a machine): the health score's "answered".
    pub fn answered(self) -> bool {
        matches!(
            self,
            Self::HumanConnected | Self::HumanHangup | Self::Voicemail
        )
    }

    /// Whether a human answered.
    pub fn human(self) -> bool {
        matches!(self, Self::HumanConnected | Self::HumanHangup)
    }

    /// Whether the failure was transient, i.e. worth retrying (SPEC §5, runbook step 4).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::Voicemail | Self::NoAnswer | Self::Busy | Self::Failed | Self::Timeout
        )
    }
}

impl std::str::FromStr for Disposition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown disposition {s:?}"))
    }
}

impl std::fmt::Display for Disposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which number an attempt dials (SPEC §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneChoice {
    /// Dial `phone_numbers[index]`.
    Dial {
        /// Index into the contact's ordered phone numbers.
        index: usize,
    },
    /// The attempt index has run past the list (or the list is empty): the contact is
    /// exhausted.
    Exhausted,
}

/// Attempt `attempt_index` (0-based) uses `phone_numbers[attempt_index / max_per_number]`
/// (default 2 attempts per number: attempts 0,1 → number 0; 2,3 → number 1; …).
/// `max_per_number` of 0 is treated as 1.
pub fn select_phone(phone_count: usize, attempt_index: u32, max_per_number: u32) -> PhoneChoice {
    let index = (attempt_index / max_per_number.max(1)) as usize;
    if index < phone_count {
        PhoneChoice::Dial { index }
    } else {
        PhoneChoice::Exhausted
    }
}

/// A campaign's retry settings (SPEC §5, §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts on each phone number before moving to the next (default 2).
    pub max_attempts_per_phone_number: u32,
    /// Delay before a retry, ms (`RETRY_DELAY_MINUTES` = 60 → 3 600 000).
    pub retry_delay_ms: i64,
    /// Voicemail drops a message and completes the contact (`true`), or retries (`false`).
    pub voicemail_drop: bool,
    /// Busy completes the contact (`false`, the seed's default) or retries (`true`).
    pub retry_busy: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts_per_phone_number: 2,
            retry_delay_ms: 60 * 60_000,
            voicemail_drop: false,
            retry_busy: false,
        }
    }
}

/// What happens to a contact after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum Resolution {
    /// Done, successfully: no more calls.
    Completed,
    /// Back to `queued` with `attempt_count = next_attempt_index`, due at `retry_after`.
    Retry {
        /// The attempt index the next attempt will use.
        next_attempt_index: u32,
        /// When the contact becomes due again.
        retry_after: DateTime<Utc>,
    },
    /// No attempt left on any number.
    Exhausted,
    /// Permanently failed: no valid number left.
    Failed,
}

impl Resolution {
    /// The contact status this resolution leads to.
    pub fn status(&self) -> ContactStatus {
        match self {
            Self::Completed => ContactStatus::Completed,
            Self::Retry { .. } => ContactStatus::Queued,
            Self::Exhausted => ContactStatus::Exhausted,
            Self::Failed => ContactStatus::Failed,
        }
    }
}

/// Resolves a contact after attempt `attempt_index` ended with `disposition` (SPEC §5
/// "Outcomes and resolution"):
///
/// | disposition | next |
/// |---|---|
/// | human_connected, human_hangup | completed |
/// | voicemail | completed if `voicemail_drop`, else retry |
/// | no_answer, failed (transient), timeout | retry |
/// | busy | completed, or retry if `retry_busy` |
/// | invalid_number | skip the rest of that number's attempts: next number now, else failed |
///
/// Retry = next attempt index, due `retry_delay_ms` after `now`, if that index still maps to
/// a number; otherwise exhausted. So nothing is retried forever.
pub fn resolve(
    disposition: Disposition,
    attempt_index: u32,
    phone_count: usize,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
) -> Resolution {
    let per_number = policy.max_attempts_per_phone_number.max(1);
    let retry = |next: u32, after: DateTime<Utc>| match select_phone(phone_count, next, per_number)
    {
        PhoneChoice::Dial { .. } => Resolution::Retry {
            next_attempt_index: next,
            retry_after: after,
        },
        PhoneChoice::Exhausted => Resolution::Exhausted,
    };
    let later = now + Duration::milliseconds(policy.retry_delay_ms);
    match disposition {
        Disposition::HumanConnected | Disposition::HumanHangup => Resolution::Completed,
        Disposition::Voicemail if policy.voicemail_drop => Resolution::Completed,
        Disposition::Busy if !policy.retry_busy => Resolution::Completed,
        Disposition::Voicemail
        | Disposition::Busy
        | Disposition::NoAnswer
        | Disposition::Failed
        | Disposition::Timeout => retry(attempt_index + 1, later),
        Disposition::InvalidNumber => {
            // Jump to the first attempt of the next number; no call connected, so no delay.
            let next = (attempt_index / per_number + 1) * per_number;
            match retry(next, now) {
                Resolution::Exhausted => Resolution::Failed,
                other => other,
            }
        }
    }
}

/// The channel-holder id of a contact's attempt: `contact:<id>:<attempt_index>`. The same id
/// is used to acquire at admission, renew while the call lives and release at completion,
/// so each of those is idempotent.
pub fn channel_holder(contact: crate::ContactId, attempt_index: i32) -> String {
    format!("contact:{}:{attempt_index}", contact.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-07-01T16:00:00Z".parse().expect("timestamp")
    }

    #[test]
    fn phone_selection_by_attempt_index() {
        let pick = |a| select_phone(3, a, 2);
        assert_eq!(pick(0), PhoneChoice::Dial { index: 0 });
        assert_eq!(pick(1), PhoneChoice::Dial { index: 0 });
        assert_eq!(pick(2), PhoneChoice::Dial { index: 1 });
        assert_eq!(pick(5), PhoneChoice::Dial { index: 2 });
        assert_eq!(pick(6), PhoneChoice::Exhausted);
        assert_eq!(
            select_phone(0, 0, 2),
            PhoneChoice::Exhausted,
            "no numbers → exhausted at once"
        );
        assert_eq!(select_phone(2, 1, 1), PhoneChoice::Dial { index: 1 });
    }

    #[test]
    fn outcome_table() {
        let p = RetryPolicy::default();
        let hour_later = now() + Duration::minutes(60);
        let r = |d| resolve(d, 0, 2, &p, now());
        assert_eq!(r(Disposition::HumanConnected), Resolution::Completed);
        assert_eq!(r(Disposition::HumanHangup), Resolution::Completed);
        assert_eq!(r(Disposition::Busy), Resolution::Completed);
        for d in [
            Disposition::Voicemail,
            Disposition::NoAnswer,
            Disposition::Failed,
            Disposition::Timeout,
        ] {
            assert_eq!(
                r(d),
                Resolution::Retry {
                    next_attempt_index: 1,
                    retry_after: hour_later
                },
                "{d}"
            );
        }
        assert_eq!(
            r(Disposition::InvalidNumber),
            Resolution::Retry {
                next_attempt_index: 2,
                retry_after: now()
            }
        );
    }

    #[test]
    fn campaign_choices_for_voicemail_and_busy() {
        let p = RetryPolicy {
            voicemail_drop: true,
            retry_busy: true,
            ..RetryPolicy::default()
        };
        assert_eq!(
            resolve(Disposition::Voicemail, 0, 1, &p, now()),
            Resolution::Completed
        );
        assert!(matches!(
            resolve(Disposition::Busy, 0, 1, &p, now()),
            Resolution::Retry {
                next_attempt_index: 1,
                ..
            }
        ));
    }

    #[test]
    fn retries_end_in_exhausted() {
        let p = RetryPolicy::default();
        // Two numbers × two attempts: the fourth failure (index 3) exhausts.
        assert!(matches!(
            resolve(Disposition::NoAnswer, 2, 2, &p, now()),
            Resolution::Retry {
                next_attempt_index: 3,
                ..
            }
        ));
        assert_eq!(
            resolve(Disposition::NoAnswer, 3, 2, &p, now()),
            Resolution::Exhausted
        );
    }

    #[test]
    fn invalid_numbers_are_skipped_then_fail() {
        let p = RetryPolicy::default();
        // Second attempt on number 0 reports invalid → straight to number 1 (index 2).
        assert_eq!(
            resolve(Disposition::InvalidNumber, 1, 2, &p, now()),
            Resolution::Retry {
                next_attempt_index: 2,
                retry_after: now()
            }
        );
        // Invalid on the last number → failed, not exhausted.
        assert_eq!(
            resolve(Disposition::InvalidNumber, 2, 2, &p, now()),
            Resolution::Failed
        );
    }

    #[test]
    fn text_round_trips() {
        for s in ContactStatus::ALL {
            assert_eq!(s.as_str().parse::<ContactStatus>(), Ok(s));
        }
        for d in Disposition::ALL {
            assert_eq!(d.as_str().parse::<Disposition>(), Ok(d));
        }
    }
}
