//! Text-message statuses and what each means for the prospect (SPEC §6).
//!
//! A message moves `pending` (recorded with its DID claim) → `submitting` (the carrier is
//! being called: the point of no return, a redelivered job never sends twice) → the
//! carrier's `queued` → `sending` → `sent` → `delivered` | `undelivered` | `failed`.
//! Carrier callbacks may arrive out of order or twice; a status only ever moves forward
//! ([`SmsStatus::rank`]), and the first final status wins.

use serde::{Deserialize, Serialize};

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

impl SmsStatus {
    /// Every status, in order.
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Submitting,
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Undelivered,
        Self::Failed,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Submitting => "submitting",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
        }
    }

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

    /// The prospect's status and disposition while its message is in `self` (SPEC §6):
    /// `sending` until the network has it, `sent` (still in progress) until the receipt,
    /// then `delivered`, or `failed` with disposition `undelivered` / `failed`.
    pub fn prospect(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::Pending | Self::Submitting | Self::Queued | Self::Sending => ("sending", None),
            Self::Sent => ("sent", None),
            Self::Delivered => ("delivered", Some("delivered")),
            Self::Undelivered => ("failed", Some("undelivered")),
            Self::Failed => ("failed", Some("failed")),
        }
    }
}

impl std::str::FromStr for SmsStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown SMS status {s:?}"))
    }
}

impl std::fmt::Display for SmsStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
        assert_eq!(SmsStatus::Submitting.prospect(), ("sending", None));
        assert_eq!(SmsStatus::Sent.prospect(), ("sent", None));
        assert_eq!(
            SmsStatus::Delivered.prospect(),
            ("delivered", Some("delivered"))
        );
        assert_eq!(
            SmsStatus::Undelivered.prospect(),
            ("failed", Some("undelivered"))
        );
    }
}
