//! The side effects every path that needs them goes through (one home per effect): giving
//! back SIP channels, asking for a campaign's stats, and the channel holders of contacts a
//! change took back.

use std::collections::BTreeMap;

use outdial_domain::CampaignId;
use outdial_domain::contact::channel_holder;
use outdial_fleet::jobs::StatsJob;
use outdial_fleet::services::Services;
use outdial_store::dialing::HolderRef;

/// A SIP channel held for one attempt: `(pool, holder id)`, the holder id being
/// `contact:<id>:<attempt index>` ([`channel_holder`]).
pub type Hold = (String, String);

/// The channels held by `contacts` (`(contact, attempt_count, pool)` as the store reports
/// contacts a change took out of `locked`).
pub fn holds_of(contacts: &[HolderRef]) -> Vec<Hold> {
    contacts
        .iter()
        .map(|(id, attempts, pool)| (pool.clone(), channel_holder(*id, *attempts)))
        .collect()
}

/// Releases `holds`, one script call per pool, at `now_ms`. Failures are logged, not
/// returned: a holder not released lapses with its lease (product §4), so a failed release
/// delays a channel but never leaks it.
pub async fn release_channels(svc: &Services, holds: &[Hold], now_ms: i64) {
    let mut by_pool: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (pool, holder) in holds {
        by_pool
            .entry(pool.as_str())
            .or_default()
            .push(holder.clone());
    }
    for (pool, holders) in by_pool {
        if let Err(e) = svc.channels.release(pool, &holders, now_ms).await {
            tracing::warn!(pool, error = %e, "channel release failed; the lease will expire");
        }
    }
}

/// Asks `campaign-stats` to aggregate `campaign` one throttle period from now
/// (`stats.throttle_ms`): at most one pending aggregation per campaign (the job id is the
/// campaign's), so `campaign.stats.updated` is published at most once per throttle period
/// (product §9). A Redis failure is logged: the next request, or the next completion, asks
/// again.
pub async fn request_stats(svc: &Services, campaign: CampaignId) {
    let now = svc.clock.now_ms();
    request_stats_at(svc, campaign, now + svc.config.stats.throttle_ms).await;
}

/// [`request_stats`] due at `due_ms` (ms since the epoch) instead of one throttle period
/// from now: a status change asks for its stats at once. An aggregation already pending for
/// the campaign is kept as it is (deduplicated by id).
pub async fn request_stats_at(svc: &Services, campaign: CampaignId, due_ms: i64) {
    let now = svc.clock.now_ms();
    let job = StatsJob::Aggregate {
        campaign_id: campaign,
    };
    if let Err(e) = svc.stats_queue.enqueue(&[job.at(due_ms)], now).await {
        tracing::warn!(campaign = %campaign, error = %e, "stats request not enqueued");
    }
}
