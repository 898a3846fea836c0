//! Campaign status changes (product §8) and all of their effects, in one function that every
//! path uses: operator commands (API, `outdialctl`), completion and both auto-pauses (voice
//! and SMS, no usable caller ID).

use outdial_domain::campaign::{CampaignCommand, CampaignStatus, Channel};
use outdial_domain::{CampaignId, OrgId};
use outdial_fleet::events::{Event, names};
use outdial_fleet::jobs::DialerJob;
use outdial_fleet::services::Services;
use outdial_store::StoreError;
use outdial_store::campaigns::Transitioned;

use crate::effects::{holds_of, release_channels, request_stats_at};

/// Applies `command` to campaign `id` (org-scoped when `org` is given), recording `actor`
/// (`api:token:<id>`, `cli`, `dialer`, …) and `reason`, in one Postgres
/// transaction ([`outdial_store::Store::transition_campaign`]), then does its effects:
///
/// - the first tick on start and resume (deduplicated: a campaign never has two);
/// - the SIP channels of the admitted contacts the change took back (a pause returns them
///   to `queued`, a cancel cancels them) are released at once, not when their leases lapse;
/// - `campaign.status.changed` is published (`from`, `to`, `command`, `actor`, `reason`);
/// - the campaign's stats are aggregated now.
///
/// Errors: [`StoreError::IllegalTransition`] (→ 409 with the current status),
/// [`StoreError::NotFound`], or Postgres failures; nothing changed then. A Redis failure
/// after the status changed is logged, not returned: maintenance restores a missing tick
/// within its interval and a channel not released lapses with its lease.
pub async fn apply(
    svc: &Services,
    id: CampaignId,
    org: Option<OrgId>,
    command: CampaignCommand,
    actor: &str,
    reason: Option<&str>,
) -> Result<Transitioned, StoreError> {
    let now = svc.clock.now();
    let now_ms = now.timestamp_millis();
    let t = svc
        .store
        .transition_campaign(id, org, command, actor, reason, now)
        .await?;
    if t.campaign.status == CampaignStatus::Dialing {
        let tick = match t.campaign.channel {
            Channel::Voice => DialerJob::VoiceTick {
                campaign_id: id,
                planned_us: None,
            },
            Channel::Sms => DialerJob::SmsTick { campaign_id: id },
        };
        if let Err(e) = svc
            .dialer_queue
            .enqueue(&[tick.at(now_ms).keep_earliest()], now_ms)
            .await
        {
            tracing::warn!(campaign = %id, error = %e, "first tick not enqueued; maintenance will restore it");
        }
    }
    release_channels(svc, &holds_of(&t.released), now_ms).await;
    let event = Event::new(names::CAMPAIGN_STATUS, t.campaign.org_id, now)
        .campaign(id)
        .data(serde_json::json!({ "from": t.from, "to": t.campaign.status, "command": command.as_str(), "actor": actor, "reason": reason }));
    svc.events.publish(&event).await;
    request_stats_at(svc, id, now_ms).await;
    Ok(t)
}

/// [`apply`], for the fleet's own changes (completion, auto-pause) that may lose a race:
/// `None` when the state machine refuses the change (another pod completed, paused or
/// cancelled the campaign first), instead of an error.
///
/// Errors: as [`apply`], except [`StoreError::IllegalTransition`].
pub async fn apply_if_allowed(
    svc: &Services,
    id: CampaignId,
    command: CampaignCommand,
    actor: &str,
    reason: Option<&str>,
) -> Result<Option<Transitioned>, StoreError> {
    match apply(svc, id, None, command, actor, reason).await {
        Ok(t) => Ok(Some(t)),
        Err(StoreError::IllegalTransition(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
