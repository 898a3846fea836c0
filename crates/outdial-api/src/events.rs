//! Live events as Server-Sent Events (product §9):
//! `GET /api/events?channels=campaign:<id>,did:<id>`.
//!
//! Each requested channel must belong to the token's organization (404 otherwise, as for
//! any other read of its data); the relay subscribes to those Redis pub/sub channels and
//! forwards each event as one SSE message — `event:` the event type, `data:` its JSON —
//! in the order Redis delivers them, which is publication order per channel. Events of
//! another organization are dropped even if one reached a subscribed channel. A comment
//! line is sent every `api.sse_keepalive_ms` so proxies keep an idle stream open.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use outdial_domain::{CampaignId, DidId, OrgId};
use outdial_fleet::events::{Event, campaign_channel, did_channel};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

const READ: &[&str] = &["events:read", "campaigns:read", "campaigns:manage"];

/// Query of `GET /api/events`.
#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    channels: Option<String>,
}

/// One requested channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Campaign(CampaignId),
    Did(DidId),
}

/// Parses `campaign:<id>,did:<id>,…`.
fn parse_channels(s: &str) -> Result<Vec<Channel>, ApiError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parsed = match part.split_once(':') {
            Some(("campaign", id)) => id.parse().ok().map(|i| Channel::Campaign(CampaignId(i))),
            Some(("did", id)) => id.parse().ok().map(|i| Channel::Did(DidId(i))),
            _ => None,
        };
        out.push(parsed.ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown channel {part:?}: use campaign:<id> or did:<id>"
            ))
        })?);
    }
    if out.is_empty() {
        return Err(ApiError::BadRequest(
            "name at least one channel: ?channels=campaign:<id>[,did:<id>…]".into(),
        ));
    }
    Ok(out)
}

/// `GET /api/events?channels=…` (events:read or campaigns:read): the SSE stream.
///
/// Errors: 400 for a missing or malformed `channels`, 404 for a channel of another
/// organization, 503 when Redis cannot be subscribed to.
pub(crate) async fn stream(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    auth.require_any(READ)?;
    let channels = parse_channels(q.channels.as_deref().unwrap_or_default())?;
    let prefix = state.svc.events.prefix().to_owned();
    let mut names = Vec::new();
    for c in &channels {
        match *c {
            Channel::Campaign(id) => {
                state.svc.store.campaign(id, Some(auth.org_id)).await?;
                names.push(campaign_channel(&prefix, id));
            }
            Channel::Did(id) => {
                state.svc.store.did(id, Some(auth.org_id)).await?;
                names.push(did_channel(&prefix, id));
            }
        }
    }
    let mut pubsub = state
        .svc
        .redis_client
        .get_async_pubsub()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    for name in &names {
        pubsub
            .subscribe(name)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    }
    let org: OrgId = auth.org_id;
    metrics::gauge!("outdial_api_sse_streams").increment(1.0);
    let guard = StreamGuard;
    let events = pubsub.into_on_message().filter_map(move |msg| {
        let _alive = &guard;
        let out = msg.get_payload::<String>().ok().and_then(|json| {
            let event: Event = serde_json::from_str(&json).ok()?;
            (event.org_id == org).then(|| {
                Ok(SseEvent::default()
                    .event(event.event_type.clone())
                    .data(json))
            })
        });
        std::future::ready(out)
    });
    let keepalive = Duration::from_millis(state.svc.config.api.sse_keepalive_ms);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(keepalive)))
}

/// Counts a stream down in `outdial_api_sse_streams` when the client goes away.
struct StreamGuard;

impl Drop for StreamGuard {
    fn drop(&mut self) {
        metrics::gauge!("outdial_api_sse_streams").decrement(1.0);
    }
}
