//! Caller-ID health endpoints (product §7, §10): per-DID health, the per-campaign pool report,
//! and spam flags. All scoped to the token's organization.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use outdial_domain::campaign::Channel;
use outdial_domain::did::{CallerIdRule, DidState};
use outdial_domain::{AttemptId, DidId};
use outdial_fleet::jobs::HealthJob;
use outdial_store::campaigns::Campaign;
use outdial_store::dids::{Did, FlaggedCall};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, parse_json};

const READ: &[&str] = &[
    "dids:read",
    "dids:manage",
    "campaigns:read",
    "campaigns:manage",
];
const MANAGE: &[&str] = &["dids:manage", "campaigns:manage"];

fn did_json(d: &Did) -> Value {
    let last_used = d.last_call_at.max(d.last_sms_at);
    json!({
        "id": d.id,
        "e164": d.e164,
        "state": d.state,
        "score": d.health_score,
        "components": d.health_components,
        "calls_in_window": d.scored_calls,
        "scored_since": d.scored_since,
        "last_used_at": last_used,
        "last_call_at": d.last_call_at,
        "last_sms_at": d.last_sms_at,
        "cooldown_until": d.cooldown_until,
        "warming_until": d.warming_until,
        "state_changed_at": d.state_changed_at,
    })
}

/// `GET /dids/health` (dids:read or campaigns:read): every DID of the organization with
/// its state, score in [0, 1], the five components, calls in the scoring window (at most
/// 50, only calls since the last cooldown ended), last use and cooldown/warming ends.
pub(crate) async fn health(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(READ)?;
    let dids = state.svc.store.dids(Some(auth.org_id)).await?;
    let cfg = &state.svc.config;
    Ok(Json(json!({
        "threshold": cfg.dialer.did_score_threshold,
        "min_calls": cfg.health.min_calls,
        "dids": dids.iter().map(did_json).collect::<Vec<_>>(),
    })))
}

/// One campaign's caller-ID pool now.
fn pool_report(c: &Campaign, dids: &[Did], rule: &CallerIdRule, now: DateTime<Utc>) -> Value {
    let pool: Vec<&Did> = dids
        .iter()
        .filter(|d| c.caller_ids.is_empty() || c.caller_ids.contains(&d.e164))
        .collect();
    let mut by_state: BTreeMap<&str, usize> =
        DidState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for d in &pool {
        *by_state.entry(d.state.as_str()).or_default() += 1;
    }
    // The dialer's own rule (product §5.5), warming ramp included for voice.
    let usable_now = pool
        .iter()
        .filter(|d| d.is_usable_on(c.channel, now, rule))
        .count();
    // The next DID back in rotation: the earliest end of a cooldown still running.
    let next_back_at = pool
        .iter()
        .filter(|d| d.state == DidState::Cooling)
        .filter_map(|d| d.cooldown_until)
        .map(|t| t.max(now))
        .min();
    json!({
        "campaign_id": c.id,
        "name": c.name,
        "channel": c.channel,
        "status": c.status,
        "dids_total": pool.len(),
        "usable_now": usable_now,
        "by_state": by_state,
        "next_back_at": next_back_at,
    })
}

/// `GET /dids/health/report` (dids:read or campaigns:read): the organization's DIDs by
/// state, and per campaign (not completed or cancelled) how many of its DIDs are usable
/// now and when the next cooling one comes back.
pub(crate) async fn report(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(READ)?;
    let store = &state.svc.store;
    let dids = store.dids(Some(auth.org_id)).await?;
    let campaigns = store.campaigns(Some(auth.org_id)).await?;
    let cfg = &state.svc.config;
    let rule = cfg.caller_id_rule();
    let now = state.svc.clock.now();
    let mut by_state: BTreeMap<&str, usize> =
        DidState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for d in &dids {
        *by_state.entry(d.state.as_str()).or_default() += 1;
    }
    let open: Vec<Value> = campaigns
        .iter()
        .filter(|c| !c.status.is_terminal())
        .map(|c| pool_report(c, &dids, &rule, now))
        .collect();
    Ok(Json(json!({
        "at": now,
        "dids_total": dids.len(),
        "usable_now": dids.iter().filter(|d| d.is_usable_on(Channel::Voice, now, &rule)).count(),
        "by_state": by_state,
        "campaigns": open,
    })))
}

/// Body of `POST /dids/{id}/spam-flags`: the call, by attempt id or carrier `CallSid`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpamFlagBody {
    attempt_id: Option<i64>,
    call_sid: Option<String>,
    note: Option<String>,
}

/// `POST /dids/{id}/spam-flags` (dids:manage or campaigns:manage) `{"call_sid": "CA…"}` or
/// `{"attempt_id": n}`, optional `note`: flags one of the DID's calls as reported spam
/// (product §7 spam-clean component) and re-scores the DID at once. 201 with the flag, 200
/// when the call was already flagged; 404 for another organization's DID or a call that is
/// not this DID's; 422 without exactly one of `attempt_id`, `call_sid`.
pub(crate) async fn spam_flag(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_any(MANAGE)?;
    let b: SpamFlagBody = parse_json(&body)?;
    let call = match (b.attempt_id, b.call_sid) {
        (Some(a), None) => FlaggedCall::Attempt(AttemptId(a)),
        (None, Some(s)) if !s.is_empty() => FlaggedCall::CallSid(s),
        _ => {
            return Err(ApiError::Validation(
                "give exactly one of `attempt_id` or `call_sid`".into(),
            ));
        }
    };
    let did = DidId(id);
    let now = state.svc.clock.now();
    let flag = state
        .svc
        .store
        .flag_spam(
            did,
            auth.org_id,
            &call,
            &auth.actor(),
            b.note.as_deref(),
            now,
        )
        .await?;
    if flag.created {
        let now_ms = now.timestamp_millis();
        state
            .svc
            .health_queue
            .enqueue(
                &[HealthJob::Rescore { did_id: did }
                    .at(now_ms)
                    .keep_earliest()],
                now_ms,
            )
            .await?;
        metrics::counter!("outdial_api_spam_flags_total").increment(1);
    }
    let code = if flag.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(json!(flag))))
}
