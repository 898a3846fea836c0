//! Campaign and DID events (product §9), published as JSON on Redis pub/sub channels
//! `campaign:<id>` (and `did:<id>` for DID events), and relayed by the API as SSE.
//!
//! Publishing is best effort (pub/sub is fire-and-forget): a failure is logged, never fails
//! the job that emitted the event — Postgres remains the record of what happened.

use chrono::{DateTime, Utc};
use outdial_domain::{AttemptId, CampaignId, ContactId, DidId, OrgId};
use outdial_queue::pool::Pool;
use serde::{Deserialize, Serialize};

/// Event names (the seed's, product §9).
pub mod names {
    /// Call placed (voice).
    pub const CALL_INITIATED: &str = "campaign.call.initiated";
    /// Prospect skipped: on the suppression list.
    pub const PROSPECT_DNC: &str = "campaign.prospect.dnc";
    /// Campaign auto-paused: no healthy DID left (voice).
    pub const PAUSED_NO_DIDS: &str = "campaign.paused.no_dids";
    /// Stats snapshot published.
    pub const STATS_UPDATED: &str = "campaign.stats.updated";
    /// SMS handed to the carrier.
    pub const SMS_SENT: &str = "campaign.sms.sent";
    /// SMS delivery confirmed by the final receipt.
    pub const SMS_DELIVERED: &str = "campaign.sms.delivered";
    /// SMS send refused by the carrier.
    pub const SMS_FAILED: &str = "campaign.sms.failed";
    /// SMS delivery failed after sending.
    pub const SMS_DELIVERY_FAILED: &str = "campaign.sms.delivery_failed";
    /// DID pulled from rotation.
    pub const DID_COOLDOWN: &str = "did.health.cooldown";
    /// DID permanently removed.
    pub const DID_BURNED: &str = "did.health.burned";
    /// DID score in the warning band.
    pub const DID_WARNING: &str = "did.health.warning";
    /// DID back in (warming / active).
    pub const DID_RECOVERED: &str = "did.health.recovered";
    /// Campaign status changed (started, paused, resumed, completed, cancelled).
    pub const CAMPAIGN_STATUS: &str = "campaign.status.changed";
}

/// One event as published: JSON `{type, org_id, …ids, at, data}` (product §9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event name, e.g. `campaign.call.initiated` (see [`names`]).
    #[serde(rename = "type")]
    pub event_type: String,
    /// Organization it belongs to (SSE relays only to that organization's tokens).
    pub org_id: OrgId,
    /// Campaign, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub campaign_id: Option<CampaignId>,
    /// Contact, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub contact_id: Option<ContactId>,
    /// Attempt, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attempt_id: Option<AttemptId>,
    /// DID, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub did_id: Option<DidId>,
    /// When it happened (injected clock).
    pub at: DateTime<Utc>,
    /// Event-specific fields.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Event {
    /// An event of `event_type` for `org` at `at`, with no ids and empty data.
    pub fn new(event_type: &str, org: OrgId, at: DateTime<Utc>) -> Self {
        Self {
            event_type: event_type.to_owned(),
            org_id: org,
            campaign_id: None,
            contact_id: None,
            attempt_id: None,
            did_id: None,
            at,
            data: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// With a campaign id: published on `campaign:<id>`.
    pub fn campaign(mut self, id: CampaignId) -> Self {
        self.campaign_id = Some(id);
        self
    }

    /// With a campaign id if there is one.
    pub fn maybe_campaign(mut self, id: Option<CampaignId>) -> Self {
        self.campaign_id = id;
        self
    }

    /// With a contact id (in the payload only; it has no channel).
    pub fn contact(mut self, id: ContactId) -> Self {
        self.contact_id = Some(id);
        self
    }

    /// With an attempt id (in the payload only; it has no channel).
    pub fn attempt(mut self, id: AttemptId) -> Self {
        self.attempt_id = Some(id);
        self
    }

    /// With a DID id: also published on `did:<id>`.
    pub fn did(mut self, id: DidId) -> Self {
        self.did_id = Some(id);
        self
    }

    /// With `data`, the event-specific JSON object (product §9 table).
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// Channel of a campaign's events, `<prefix>campaign:<id>`.
pub fn campaign_channel(prefix: &str, id: CampaignId) -> String {
    format!("{prefix}campaign:{id}")
}

/// Channel of a DID's events, `<prefix>did:<id>`.
pub fn did_channel(prefix: &str, id: DidId) -> String {
    format!("{prefix}did:{id}")
}

/// Publishes events. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    pool: Pool,
    prefix: String,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Events {
    /// Publisher on `pool` with channel prefix `prefix`.
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
        }
    }

    /// Prefix of every channel it publishes on (`redis.prefix`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Publishes `event` on its campaign channel and, for DID events, its DID channel, in one
    /// round trip. Failures are logged and swallowed (best effort, see module docs).
    pub async fn publish(&self, event: &Event) {
        if let Err(e) = self.try_publish(std::slice::from_ref(event)).await {
            tracing::warn!(event = %event.event_type, error = %e, "event not published");
        }
    }

    /// Publishes several events in one round trip, in order.
    ///
    /// Errors: Redis failures or an unserializable event.
    pub async fn try_publish(&self, events: &[Event]) -> anyhow::Result<()> {
        let mut pipe = redis::pipe();
        let mut any = false;
        for event in events {
            let json = serde_json::to_string(event)?;
            if let Some(c) = event.campaign_id {
                pipe.publish(campaign_channel(&self.prefix, c), &json)
                    .ignore();
                any = true;
            }
            if let Some(d) = event.did_id {
                pipe.publish(did_channel(&self.prefix, d), &json).ignore();
                any = true;
            }
        }
        if any {
            let mut conn = self.pool.get().await?;
            let () = pipe.query_async(&mut *conn).await?;
        }
        Ok(())
    }
}
