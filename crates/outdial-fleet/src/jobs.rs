//! Payloads of the three queues (product §3) and their deduplication ids.
//!
//! | queue | jobs | concurrency |
//! |---|---|---|
//! | `campaign-dialer` | [`DialerJob`] (ticks, calls, callbacks, timeouts) | 5 |
//! | `campaign-dispatch` | [`DialerJob`] (`Dispatch`, `Maintenance`, `DidLifecycle`) | 2 |
//! | `campaign-health` | [`HealthJob`] | 10 |
//! | `campaign-stats` | [`StatsJob`] | 5 |
//!
//! Jobs with a canonical id ([`DialerJob::id`] …) are deduplicated by it: one dispatch
//! cycle, one tick per campaign, one originate / timeout per attempt, one health job per
//! attempt and one pending aggregation per campaign can exist at a time.

use outdial_domain::{AttemptId, CampaignId, ContactId};
use outdial_queue::{Job, NewJob};
use serde::{Deserialize, Serialize};

/// Name of the dialer queue (keys `bull:{campaign-dialer}:…`).
pub const DIALER_QUEUE: &str = "campaign-dialer";
/// Name of the dialer's control queue: the fleet-wide singleton jobs (`dispatch`,
/// `maintenance`, `did-lifecycle`). They have a queue of their own so a backlog of ticks and
/// call jobs can never delay the dispatch cycle (which is what relieves such a backlog).
pub const DISPATCH_QUEUE: &str = "campaign-dispatch";
/// Name of the health queue.
pub const HEALTH_QUEUE: &str = "campaign-health";
/// Name of the stats queue.
pub const STATS_QUEUE: &str = "campaign-stats";

/// Jobs of `campaign-dialer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DialerJob {
    /// The fleet-wide dispatch cycle (product §5): sweep, allocate, admit. Id `dispatch`;
    /// re-enqueues itself every poll interval.
    Dispatch,
    /// One pacing tick of a voice campaign: starts one admitted contact. Id
    /// `tick:<campaign>`; re-enqueues itself every `1000 / cps` ms.
    VoiceTick {
        /// the voice campaign it paces (`tick:<campaign>`)
        campaign_id: CampaignId,
        /// the tick's planned time in µs since the epoch (the due time rounds it up to ms);
        /// `None` for a first or re-started tick
        #[serde(default)]
        planned_us: Option<i64>,
    },
    /// One SMS drip tick (product §6): claims one prospect and one free DID and records the
    /// message. Id `sms-tick:<campaign>`; re-enqueues itself every `gap / usable DIDs` ms.
    SmsTick {
        /// the SMS campaign it drips for (`sms-tick:<campaign>`)
        campaign_id: CampaignId,
    },
    /// Hands a recorded message to the carrier. Id `sms-send:<contact>`.
    SmsSend {
        /// the prospect whose recorded message it sends
        contact_id: ContactId,
    },
    /// Ends a message with no final delivery status after the delivery timeout as `failed`
    /// (disposition `timeout`). Id `sms-timeout:<contact>`.
    SmsTimeout {
        /// the prospect whose message has no final status yet
        contact_id: ContactId,
    },
    /// Starts an admitted direct call (no campaign, no pacing). Id `start:<contact>`.
    StartContact {
        /// the admitted (`locked`) direct-call contact
        contact_id: ContactId,
    },
    /// Calls the carrier for a recorded attempt. Id `originate:<attempt>`.
    Originate {
        /// the recorded attempt, moved `pending → originating` before the call
        attempt_id: AttemptId,
    },
    /// A verified carrier status callback. Id `status:<attempt>:<call_status>` so a
    /// redelivered callback is not processed twice.
    CallStatus {
        /// the attempt (from the callback URL)
        attempt_id: AttemptId,
        /// `CallSid`
        call_sid: String,
        /// `CallStatus`
        call_status: String,
        /// `CallDuration`, s
        call_duration_s: Option<u32>,
        /// `AnsweredBy`
        answered_by: Option<String>,
        /// `SipResponseCode`
        sip_response_code: Option<u16>,
        /// `SpamFlagged=true` on the callback
        #[serde(default)]
        spam_flagged: bool,
    },
    /// A verified SMS delivery callback. Id `sms-status:<contact>:<status>`.
    SmsStatus {
        /// the contact (from the callback URL)
        contact_id: ContactId,
        /// `MessageSid`
        message_sid: String,
        /// `MessageStatus`
        message_status: String,
        /// `ErrorCode`
        error_code: Option<u32>,
    },
    /// The durable completion timeout of an attempt (product §5.7). Id `timeout:<attempt>`.
    CallTimeout {
        /// the attempt to end as `timeout` unless already completed
        attempt_id: AttemptId,
    },
    /// Renews channel leases of live calls and reconciles Redis with Postgres. Id
    /// `maintenance`.
    Maintenance,
    /// Moves DIDs cooling → warming → active (product §7). Id `did-lifecycle`.
    DidLifecycle,
}

impl Job for DialerJob {
    fn kind(&self) -> &'static str {
        match self {
            Self::Dispatch => "dispatch",
            Self::VoiceTick { .. } => "voice_tick",
            Self::SmsTick { .. } => "sms_tick",
            Self::SmsSend { .. } => "sms_send",
            Self::SmsTimeout { .. } => "sms_timeout",
            Self::StartContact { .. } => "start_contact",
            Self::Originate { .. } => "originate",
            Self::CallStatus { .. } => "call_status",
            Self::SmsStatus { .. } => "sms_status",
            Self::CallTimeout { .. } => "call_timeout",
            Self::Maintenance => "maintenance",
            Self::DidLifecycle => "did_lifecycle",
        }
    }
}

impl DialerJob {
    /// The job's deduplication id.
    pub fn id(&self) -> String {
        match self {
            Self::Dispatch => "dispatch".into(),
            Self::VoiceTick { campaign_id, .. } => format!("tick:{campaign_id}"),
            Self::SmsTick { campaign_id } => format!("sms-tick:{campaign_id}"),
            Self::SmsSend { contact_id } => format!("sms-send:{contact_id}"),
            Self::SmsTimeout { contact_id } => format!("sms-timeout:{contact_id}"),
            Self::StartContact { contact_id } => format!("start:{contact_id}"),
            Self::Originate { attempt_id } => format!("originate:{attempt_id}"),
            Self::CallStatus {
                attempt_id,
                call_status,
                ..
            } => format!("status:{attempt_id}:{call_status}"),
            Self::SmsStatus {
                contact_id,
                message_status,
                ..
            } => format!("sms-status:{contact_id}:{message_status}"),
            Self::CallTimeout { attempt_id } => format!("timeout:{attempt_id}"),
            Self::Maintenance => "maintenance".into(),
            Self::DidLifecycle => "did-lifecycle".into(),
        }
    }

    /// This job as a queue entry with its canonical id, due at `due_ms`.
    pub fn at(self, due_ms: i64) -> NewJob<Self> {
        let id = self.id();
        NewJob::new(self, due_ms).with_id(id)
    }
}

/// Jobs of `campaign-health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HealthJob {
    /// Re-score a DID over its recent `did_health_events` (after a call of it completed, or
    /// a spam flag). Id `rescore:<did>`: requests made while one is pending are absorbed by
    /// it, so a busy DID is scored once per `rescore_delay_ms`, not once per call.
    Rescore {
        /// the DID to re-score over its last 50 scored calls
        did_id: outdial_domain::DidId,
    },
}

impl Job for HealthJob {
    fn kind(&self) -> &'static str {
        match self {
            Self::Rescore { .. } => "rescore",
        }
    }
}

impl HealthJob {
    /// This job as a queue entry with its canonical id, due at `due_ms`.
    pub fn at(self, due_ms: i64) -> NewJob<Self> {
        let id = match &self {
            Self::Rescore { did_id } => format!("rescore:{did_id}"),
        };
        NewJob::new(self, due_ms).with_id(id)
    }
}

/// Jobs of `campaign-stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StatsJob {
    /// Aggregate a campaign and publish `campaign.stats.updated`. Id `stats:<campaign>`: while
    /// one is pending, further requests are absorbed, which throttles publishing.
    Aggregate {
        /// the campaign to aggregate; published on its `campaign:<id>` channel
        campaign_id: CampaignId,
    },
}

impl Job for StatsJob {
    fn kind(&self) -> &'static str {
        "aggregate"
    }
}

impl StatsJob {
    /// This job as a queue entry with its canonical id, due at `due_ms`.
    pub fn at(self, due_ms: i64) -> NewJob<Self> {
        let Self::Aggregate { campaign_id } = &self;
        let id = format!("stats:{campaign_id}");
        NewJob::new(self, due_ms).with_id(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outdial_queue::Envelope;

    #[test]
    fn payloads_round_trip_through_messagepack() {
        let jobs = vec![
            DialerJob::Dispatch,
            DialerJob::VoiceTick {
                campaign_id: CampaignId(7),
                planned_us: Some(1_000_333),
            },
            DialerJob::CallStatus {
                attempt_id: AttemptId(9),
                call_sid: "CA1".into(),
                call_status: "completed".into(),
                call_duration_s: Some(42),
                answered_by: None,
                sip_response_code: None,
                spam_flagged: true,
            },
        ];
        for job in jobs {
            let env = Envelope {
                id: job.id(),
                kind: job.kind().into(),
                payload: job.clone(),
                attempt: 0,
                enqueued_ms: 1,
                due_ms: 2,
                outages: 0,
            };
            let bytes = rmp_serde_roundtrip(&env);
            assert_eq!(bytes.payload, job);
        }
    }

    fn rmp_serde_roundtrip(env: &Envelope<DialerJob>) -> Envelope<DialerJob> {
        let bytes = rmp_serde::to_vec_named(env).expect("encode");
        rmp_serde::from_slice(&bytes).expect("decode")
    }

    #[test]
    fn canonical_ids() {
        assert_eq!(
            DialerJob::VoiceTick {
                campaign_id: CampaignId(3),
                planned_us: None
            }
            .id(),
            "tick:3"
        );
        assert_eq!(
            DialerJob::CallTimeout {
                attempt_id: AttemptId(5)
            }
            .at(10)
            .id
            .as_deref(),
            Some("timeout:5")
        );
        assert_eq!(
            StatsJob::Aggregate {
                campaign_id: CampaignId(3)
            }
            .at(0)
            .id
            .as_deref(),
            Some("stats:3")
        );
    }
}
