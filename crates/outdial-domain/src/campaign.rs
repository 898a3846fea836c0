//! Campaigns: channel, status and the state machine (product §8).
//!
//! ```text
//! created → dialing → completed
//!             ↕
//!           paused
//! created | dialing | paused → cancelled
//! ```

use serde::{Deserialize, Serialize};

use crate::text::stored_text;

/// Voice calls or SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Outbound calls, paced by `calls_per_second` (product §5).
    Voice,
    /// Outbound texts, dripped one per tick across the DID pool (product §6).
    Sms,
}

stored_text!(Channel, "channel", {
    Voice => "voice",
    Sms => "sms",
});

/// A campaign's status (product §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Configured, not started.
    Created,
    /// Running: ticks are scheduled and contacts are admitted.
    Dialing,
    /// Stopped by an operator or by DID exhaustion; in-flight calls finish.
    Paused,
    /// Every contact is terminal.
    Completed,
    /// Stopped for good; queued contacts were cancelled.
    Cancelled,
}

stored_text!(CampaignStatus, "campaign status", {
    Created => "created",
    Dialing => "dialing",
    Paused => "paused",
    Completed => "completed",
    Cancelled => "cancelled",
});

impl CampaignStatus {
    /// Whether the campaign can never run again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

/// Something that asks a campaign to change status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignCommand {
    /// `POST /campaigns/:id/start`
    Start,
    /// `POST /campaigns/:id/pause`, or the dialer when no healthy DID is left
    Pause,
    /// `POST /campaigns/:id/resume`
    Resume,
    /// `POST /campaigns/:id/cancel`
    Cancel,
    /// The dialer, when every contact is terminal
    Complete,
}

stored_text!(CampaignCommand, "campaign command", {
    Start => "start",
    Pause => "pause",
    Resume => "resume",
    Cancel => "cancel",
    Complete => "complete",
});

/// A command that the current status does not allow (answered 409 by the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a campaign that is {current}", command.as_str())]
pub struct IllegalTransition {
    /// The status the campaign is in.
    pub current: CampaignStatus,
    /// What was asked.
    pub command: CampaignCommand,
}

/// The status `command` moves `current` to (product §8).
///
/// Errors: [`IllegalTransition`] for anything not in the diagram, e.g. resuming a dialing
/// campaign or cancelling a completed one.
pub fn transition(
    current: CampaignStatus,
    command: CampaignCommand,
) -> Result<CampaignStatus, IllegalTransition> {
    use CampaignCommand as C;
    use CampaignStatus as S;
    match (current, command) {
        (S::Created, C::Start) => Ok(S::Dialing),
        (S::Dialing, C::Pause) => Ok(S::Paused),
        (S::Paused, C::Resume) => Ok(S::Dialing),
        (S::Dialing, C::Complete) => Ok(S::Completed),
        (S::Created | S::Dialing | S::Paused, C::Cancel) => Ok(S::Cancelled),
        _ => Err(IllegalTransition { current, command }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_is_legal_or_illegal_as_the_diagram_says() {
        use CampaignCommand as C;
        use CampaignStatus as S;
        let legal = [
            (S::Created, C::Start, S::Dialing),
            (S::Dialing, C::Pause, S::Paused),
            (S::Paused, C::Resume, S::Dialing),
            (S::Dialing, C::Complete, S::Completed),
            (S::Created, C::Cancel, S::Cancelled),
            (S::Dialing, C::Cancel, S::Cancelled),
            (S::Paused, C::Cancel, S::Cancelled),
        ];
        let commands = [C::Start, C::Pause, C::Resume, C::Cancel, C::Complete];
        for from in S::ALL {
            for cmd in commands {
                let expected = legal
                    .iter()
                    .find(|(f, c, _)| *f == from && *c == cmd)
                    .map(|(_, _, to)| *to);
                match (transition(from, cmd), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want),
                    (Err(e), None) => assert_eq!((e.current, e.command), (from, cmd)),
                    (got, want) => panic!("{from} {cmd:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }
}
