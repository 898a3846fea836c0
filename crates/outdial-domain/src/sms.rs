//! Text-message statuses and what each means for the prospect (product §6).
//!
//! A message moves `pending` (recorded with its DID claim) → `submitting` (the carrier is
//! being called: the point of no return, a redelivered job never sends twice) → the
//! carrier's `queued` → `sending` → `sent` → `delivered` | `undelivered` | `failed`.
//! Carrier callbacks may arrive out of order or twice; a status only ever moves forward
//! ([`SmsStatus::rank`]), and the first final status wins.

use serde::{Deserialize, Serialize};

use crate::contact::{ContactStatus, Disposition};
use crate::text::stored_text;

/// Status of one text message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsStatus {
    /// Recorded, with its DID claimed; the carrier has not been called.
    Pending,
    /// The carrier is being called.
    Submitting,
    /// Accepted by the carrier (`queued`, or `accepted` for messaging services).
    Queued,
    /// The carrier is handing it to the network.
    Sending,
    /// Handed to the network; the delivery receipt is still to come.
    Sent,
    /// The handset received it (final).
    Delivered,
    /// The network could not deliver it (final).
    Undelivered,
    /// The carrier could not send it, or it was refused when sent (final).
    Failed,
}

stored_text!(SmsStatus, "SMS status", {
    Pending => "pending",
    Submitting => "submitting",
    Queued => "queued",
    Sending => "sending",
    Sent => "sent",
    Delivered => "delivered",
    Undelivered => "undelivered",
    Failed => "failed",
});

impl SmsStatus {
    /// The status a carrier `MessageStatus` names (`accepted` and `scheduled` count as
    /// `queued`); `None` for statuses outdial does not track (`receiving`, `received`,
    /// `read`, …).
    pub fn from_carrier(s: &str) -> Option<Self> {
        match s {
            "accepted" | "scheduled" | "queued" => Some(Self::Queued),
            "sending" => Some(Self::Sending),
            "sent" => Some(Self::Sent),
            "delivered" => Some(Self::Delivered),
            "undelivered" => Some(Self::Undelivered),
            "failed" | "canceled" => Some(Self::Failed),
            _ => None,
        }
    }

    /// Order of progress: a message only moves to a higher rank; every final status has
    /// the same, highest rank so the first one wins.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Submitting => 1,
            Self::Queued => 2,
            Self::Sending => 3,
            Self::Sent => 4,
            Self::Delivered | Self::Undelivered | Self::Failed => 5,
        }
    }

    /// Whether nothing follows this status.
    pub fn is_final(self) -> bool {
        self.rank() == 5
    }

    /// Whether a message in `self` moves to `next` (strictly forward).
    pub fn advances_to(self, next: Self) -> bool {
        next.rank() > self.rank()
    }

    /// The prospect's status and disposition while its message is in `self` (product §6):
    /// `sending` until the network has it, `sent` (still in progress) until the receipt,
    /// then `delivered`, or `failed` with disposition `undelivered` / `failed`.
    pub fn prospect(self) -> (ContactStatus, Option<Disposition>) {
        match self {
            Self::Pending | Self::Submitting | Self::Queued | Self::Sending => {
                (ContactStatus::Sending, None)
            }
            Self::Sent => (ContactStatus::Sent, None),
            Self::Delivered => (ContactStatus::Delivered, Some(Disposition::Delivered)),
            Self::Undelivered => (ContactStatus::Failed, Some(Disposition::Undelivered)),
            Self::Failed => (ContactStatus::Failed, Some(Disposition::Failed)),
        }
    }
}

/// What an SMS tick found before claiming anything (product §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DripFacts {
    /// usable DIDs of the campaign, free or not
    pub usable_dids: u32,
    /// when the first DID is free again, ms, if every usable one texted within the gap
    pub next_free_at_ms: Option<i64>,
    /// whether any of the campaign's zone keys is inside its window now
    pub any_zone_open: bool,
    /// the tick's planned (due) time, ms
    pub planned_ms: i64,
    /// the injected clock's now, ms since the epoch
    pub now_ms: i64,
    /// the per-DID gap between two texts, ms (`dialer.sms_gap_ms`, 15 min)
    pub gap_ms: i64,
    /// how late a tick may run before the drip's grid restarts, ms (`dialer.max_tick_lag_ms`)
    pub max_lag_ms: i64,
}

/// What an SMS tick does ([`plan_drip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DripPlan {
    /// No usable DID: the campaign auto-pauses (product §5.5, §6); no next tick.
    Pause,
    /// Every zone is outside the window: the campaign completes if nothing is left, else
    /// its tick sleeps until the earliest opening, and at least until `next_ms`.
    Closed {
        /// the next tick's earliest time on the drip grid, ms
        next_ms: i64,
    },
    /// Every usable DID texted within the gap: the next tick when the first is free.
    Busy {
        /// the next tick's due time, ms
        at_ms: i64,
    },
    /// Text one due prospect now; the next tick at `next_ms`.
    Text {
        /// the next tick's due time, ms
        next_ms: i64,
    },
}

/// Decides an SMS tick (product §6): pause without a usable DID; otherwise the next tick is one
/// drip interval (`gap ÷ usable DIDs`, [`crate::pacing::next_drip_ms`]) after this one's
/// planned time, and this tick texts unless every zone is closed or every DID is inside its
/// gap.
pub fn plan_drip(f: &DripFacts) -> DripPlan {
    if f.usable_dids == 0 {
        return DripPlan::Pause;
    }
    let interval = crate::pacing::sms_tick_interval_ms(f.gap_ms, f.usable_dids);
    let next_ms = crate::pacing::next_drip_ms(f.planned_ms, interval, f.now_ms, f.max_lag_ms);
    if !f.any_zone_open {
        return DripPlan::Closed { next_ms };
    }
    match f.next_free_at_ms {
        Some(free) => DripPlan::Busy {
            at_ms: next_ms.max(free),
        },
        None => DripPlan::Text { next_ms },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward_and_the_first_final_one_wins() {
        use SmsStatus::*;
        assert!(Pending.advances_to(Submitting));
        assert!(Submitting.advances_to(Queued));
        assert!(Queued.advances_to(Sent));
        assert!(Sending.advances_to(Delivered));
        // A late `sending` after `sent` is ignored.
        assert!(!Sent.advances_to(Sending));
        // Final statuses never change.
        for f in [Delivered, Undelivered, Failed] {
            for s in SmsStatus::ALL {
                assert!(!f.advances_to(s), "{f} → {s}");
            }
        }
    }

    #[test]
    fn carrier_statuses_map_and_unknown_ones_are_ignored() {
        assert_eq!(SmsStatus::from_carrier("accepted"), Some(SmsStatus::Queued));
        assert_eq!(SmsStatus::from_carrier("sent"), Some(SmsStatus::Sent));
        assert_eq!(
            SmsStatus::from_carrier("undelivered"),
            Some(SmsStatus::Undelivered)
        );
        assert_eq!(SmsStatus::from_carrier("read"), None);
        for s in SmsStatus::ALL {
            assert_eq!(s.as_str().parse::<SmsStatus>(), Ok(s));
        }
    }

    #[test]
    fn the_prospect_follows_its_message() {
        use crate::contact::{ContactStatus as C, Disposition as D};
        assert_eq!(SmsStatus::Submitting.prospect(), (C::Sending, None));
        assert_eq!(SmsStatus::Sent.prospect(), (C::Sent, None));
        assert_eq!(
            SmsStatus::Delivered.prospect(),
            (C::Delivered, Some(D::Delivered))
        );
        assert_eq!(
            SmsStatus::Undelivered.prospect(),
            (C::Failed, Some(D::Undelivered))
        );
    }

    fn facts() -> DripFacts {
        DripFacts {
            usable_dids: 10,
            next_free_at_ms: None,
            any_zone_open: true,
            planned_ms: 1_000_000,
            now_ms: 1_000_050,
            gap_ms: 900_000,
            max_lag_ms: 5_000,
        }
    }

    #[test]
    fn a_drip_texts_every_gap_over_its_dids() {
        assert_eq!(plan_drip(&facts()), DripPlan::Text { next_ms: 1_090_000 });
        let fifty = DripFacts {
            usable_dids: 50,
            ..facts()
        };
        assert_eq!(plan_drip(&fifty), DripPlan::Text { next_ms: 1_018_000 });
    }

    #[test]
    fn a_drip_pauses_sleeps_or_waits_for_a_free_did() {
        let none = DripFacts {
            usable_dids: 0,
            ..facts()
        };
        assert_eq!(plan_drip(&none), DripPlan::Pause);
        let closed = DripFacts {
            any_zone_open: false,
            ..facts()
        };
        assert_eq!(plan_drip(&closed), DripPlan::Closed { next_ms: 1_090_000 });
        let busy = DripFacts {
            next_free_at_ms: Some(1_200_000),
            ..facts()
        };
        assert_eq!(plan_drip(&busy), DripPlan::Busy { at_ms: 1_200_000 });
        let soon = DripFacts {
            next_free_at_ms: Some(1_010_000),
            ..facts()
        };
        assert_eq!(
            plan_drip(&soon),
            DripPlan::Busy { at_ms: 1_090_000 },
            "never before the grid"
        );
    }
}
