//! Contacts (prospects): statuses, call dispositions, phone-number selection and how an
//! attempt's outcome resolves the contact (product §5.4, §5 "Outcomes and resolution", §6).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::text::stored_text;

/// Where a contact is in its life. Stored as the lowercase text of the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    /// Waiting to be dialed or texted; due once `retry_after` has passed.
    Queued,
    /// Admitted by a dispatch cycle: holds an org slot, a global slot and a channel, waiting
    /// for its campaign's next tick (product §4 "Active calls" counts it).
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

stored_text!(ContactStatus, "contact status", {
    Queued => "queued",
    Locked => "locked",
    Dialing => "dialing",
    Completed => "completed",
    Exhausted => "exhausted",
    Failed => "failed",
    Cancelled => "cancelled",
    Sending => "sending",
    Sent => "sent",
    Delivered => "delivered",
});

impl ContactStatus {
    /// The statuses of contacts in progress: admitted, in a call, or with a text on its way
    /// (`sending`, and `sent` until its delivery receipt: product §6).
    pub const IN_PROGRESS: [ContactStatus; 4] =
        [Self::Locked, Self::Dialing, Self::Sending, Self::Sent];

    /// The statuses that are not finished: `queued` or [`Self::IN_PROGRESS`]. A campaign
    /// with a contact in one of them is not complete (product §8).
    pub const OPEN: [ContactStatus; 5] = [
        Self::Queued,
        Self::Locked,
        Self::Dialing,
        Self::Sending,
        Self::Sent,
    ];

    /// The finished statuses: nothing more will happen to the contact.
    pub const FINISHED: [ContactStatus; 5] = [
        Self::Completed,
        Self::Exhausted,
        Self::Failed,
        Self::Cancelled,
        Self::Delivered,
    ];

    /// The statuses that hold capacity — product §4's "active calls": admitted (`locked`) or in
    /// a call (`dialing`). They count against every limit and hold a SIP channel.
    pub const ACTIVE: [ContactStatus; 2] = [Self::Locked, Self::Dialing];

    /// Whether nothing more will happen to the contact ([`Self::FINISHED`]).
    pub fn is_terminal(self) -> bool {
        Self::FINISHED.contains(&self)
    }

    /// Whether the contact is not finished ([`Self::OPEN`]).
    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
}

/// How one voice call attempt ended (product §5 "Outcomes and resolution"), or — the last two
/// variants — how a text ended (product §6): a contact's `disposition` is its last attempt's,
/// call or text.
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
    /// No completion signal within the completion timeout (30 min by default); for a text,
    /// no delivery receipt within the delivery timeout.
    Timeout,
    /// A text reached the handset (SMS only).
    Delivered,
    /// The network could not deliver a text (SMS only).
    Undelivered,
}

stored_text!(Disposition, "disposition", {
    HumanConnected => "human_connected",
    HumanHangup => "human_hangup",
    Voicemail => "voicemail",
    NoAnswer => "no_answer",
    Busy => "busy",
    Failed => "failed",
    InvalidNumber => "invalid_number",
    Timeout => "timeout",
    Delivered => "delivered",
    Undelivered => "undelivered",
});

impl Disposition {
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

    /// Whether the failure was transient, i.e. worth retrying (product §5, runbook step 4).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::Voicemail | Self::NoAnswer | Self::Busy | Self::Failed | Self::Timeout
        )
    }
}

/// Which number an attempt dials (product §5.4).
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

/// A campaign's retry settings (product §5, §12).
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

/// Resolves a contact after attempt `attempt_index` ended with `disposition` (product §5
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
        // A text's outcomes never end a call; the SMS path resolves texts itself (product §6).
        Disposition::Delivered => Resolution::Completed,
        Disposition::Undelivered => Resolution::Failed,
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

/// Why a contact ended without a call (its `status_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// One of its numbers is on the organization's suppression list (product §5.1): cancelled.
    Dnc,
    /// Its campaign was cancelled while it was queued, admitted, or waiting for a retry.
    CampaignCancelled,
    /// No number is left for its next attempt (product §5.4): exhausted, or failed for a text.
    NoNumbersLeft,
}

stored_text!(EndReason, "end reason", {
    Dnc => "dnc",
    CampaignCancelled => "campaign_cancelled",
    NoNumbersLeft => "no_numbers_left",
});

/// What ended a call attempt (product §5.7): whichever came first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedBy {
    /// The carrier's final status callback, verified by the API.
    Webhook,
    /// The durable completion-timeout job.
    Timeout,
    /// The carrier refused the call when it was originated.
    Originate,
}

stored_text!(CompletedBy, "completion source", {
    Webhook => "webhook",
    Timeout => "timeout",
    Originate => "originate",
});

/// Where a call attempt is (product §5.6, §5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Recorded; the carrier has not been called.
    Pending,
    /// The carrier is being called: the point of no return, never originated again.
    Originating,
    /// The carrier accepted the call (its call id is recorded).
    InProgress,
    /// Ended, exactly once.
    Completed,
}

stored_text!(AttemptStatus, "attempt status", {
    Pending => "pending",
    Originating => "originating",
    InProgress => "in_progress",
    Completed => "completed",
});

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
    fn status_groups_partition_every_status() {
        for s in ContactStatus::ALL {
            assert_ne!(
                s.is_open(),
                s.is_terminal(),
                "{s}: open or finished, not both"
            );
            assert_eq!(
                ContactStatus::IN_PROGRESS.contains(&s),
                s.is_open() && s != ContactStatus::Queued,
                "{s}"
            );
        }
        assert!(
            ContactStatus::ACTIVE
                .iter()
                .all(|s| ContactStatus::IN_PROGRESS.contains(s))
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
        for r in EndReason::ALL {
            assert_eq!(r.as_str().parse::<EndReason>(), Ok(r));
        }
        for c in CompletedBy::ALL {
            assert_eq!(c.as_str().parse::<CompletedBy>(), Ok(c));
        }
        for a in AttemptStatus::ALL {
            assert_eq!(a.as_str().parse::<AttemptStatus>(), Ok(a));
        }
    }
}
