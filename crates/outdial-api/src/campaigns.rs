//! Campaign endpoints (product §8, §10, §11): create, read, start/pause/resume/cancel, stats,
//! contact upload, transition history. All scoped to the token's organization.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use outdial_control::import::ImportFailure;
use outdial_control::spec::CampaignSpec;
use outdial_control::transition;
use outdial_domain::CampaignId;
use outdial_domain::campaign::CampaignCommand;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, parse_json};

const READ: &[&str] = &["campaigns:read", "campaigns:manage"];
const MANAGE: &[&str] = &["campaigns:manage"];

/// `POST /api/campaigns` (campaigns:manage): body [`CampaignSpec`] → 201 with the campaign.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_any(MANAGE)?;
    let spec: CampaignSpec = parse_json(&body)?;
    let new = spec
        .into_new(auth.org_id, &state.svc.config.channels)
        .map_err(ApiError::Validation)?;
    let campaign = state
        .svc
        .store
        .create_campaign(&new, state.svc.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(json!(campaign))))
}

/// `GET /api/campaigns` (campaigns:read): the organization's campaigns, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(READ)?;
    Ok(Json(
        json!({ "campaigns": state.svc.store.campaigns(Some(auth.org_id)).await? }),
    ))
}

/// `GET /api/campaigns/{id}` (campaigns:read).
pub(crate) async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(READ)?;
    Ok(Json(json!(
        state
            .svc
            .store
            .campaign(CampaignId(id), Some(auth.org_id))
            .await?
    )))
}

async fn command(
    state: &AppState,
    auth: &Auth,
    id: i64,
    cmd: CampaignCommand,
    reason: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(MANAGE)?;
    let t = transition::apply(
        &state.svc,
        CampaignId(id),
        Some(auth.org_id),
        cmd,
        &auth.actor(),
        reason,
    )
    .await?;
    Ok(Json(
        json!({ "campaign": t.campaign, "from": t.from, "cancelled_contacts": t.cancelled_contacts, "released_admissions": t.released.len() }),
    ))
}

/// Optional `{"reason": "…"}` body of the control endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reason {
    reason: Option<String>,
}

fn reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(parse_json::<Reason>(body)?.reason)
}

/// `POST /api/campaigns/{id}/start` (campaigns:manage): created → dialing; 409 otherwise.
pub(crate) async fn start(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    command(
        &s,
        &auth,
        id,
        CampaignCommand::Start,
        reason(&body)?.as_deref(),
    )
    .await
}

/// `POST /api/campaigns/{id}/pause` (campaigns:manage): dialing → paused; in-flight calls finish.
pub(crate) async fn pause(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    command(
        &s,
        &auth,
        id,
        CampaignCommand::Pause,
        reason(&body)?.as_deref(),
    )
    .await
}

/// `POST /api/campaigns/{id}/resume` (campaigns:manage): paused → dialing.
pub(crate) async fn resume(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    command(
        &s,
        &auth,
        id,
        CampaignCommand::Resume,
        reason(&body)?.as_deref(),
    )
    .await
}

/// `POST /api/campaigns/{id}/cancel` (campaigns:manage): → cancelled; queued contacts are
/// cancelled, in-flight calls finish and are recorded.
pub(crate) async fn cancel(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    command(
        &s,
        &auth,
        id,
        CampaignCommand::Cancel,
        reason(&body)?.as_deref(),
    )
    .await
}

/// `GET /api/campaigns/{id}/transitions` (campaigns:read): every status change with its
/// actor and reason.
pub(crate) async fn transitions(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(READ)?;
    let c = state
        .svc
        .store
        .campaign(CampaignId(id), Some(auth.org_id))
        .await?;
    Ok(Json(
        json!({ "transitions": state.svc.store.campaign_transitions(c.id).await? }),
    ))
}

/// `GET /api/campaigns/{id}/stats` (campaigns:read): live counts by status and disposition,
/// attempt figures, the last published snapshot, and the dispatch view of the campaign —
/// its organization's limit, active calls, room, demand and allocation, and why the
/// campaign is or is not dialing (the data of `outdialctl dispatch explain`).
pub(crate) async fn stats(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(READ)?;
    let store = &state.svc.store;
    let now = state.svc.clock.now();
    let outdial_store::stats::CampaignFigures {
        campaign: c,
        counts,
        attempts,
    } = store
        .campaign_figures(CampaignId(id), Some(auth.org_id), now)
        .await?;
    let snapshot = store
        .campaign_stats(c.id)
        .await?
        .map(|(s, at)| json!({ "at": at, "stats": s }));
    let explain = state.planner.explain(now).await?;
    let dispatch = json!({
        "at": explain.at,
        "global_limit": explain.global_limit,
        "global_active": explain.active_total,
        "global_free": explain.free,
        "pools": explain.pools,
        "organization": explain.orgs.iter().find(|o| o.org_id == c.org_id),
        "campaign": explain.campaigns.iter().find(|x| x.plan.campaign_id == c.id),
    });
    Ok(Json(json!({
        "campaign_id": c.id, "status": c.status, "counts": counts, "attempts": attempts,
        "last_published": snapshot, "dispatch": dispatch,
    })))
}

/// `?filename=` of an upload.
#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    filename: Option<String>,
}

/// `POST /api/campaigns/{id}/contacts?filename=…` (contacts:write or campaigns:manage):
/// the body is a contact CSV (see `outdial_domain::import`). Answers the import report:
/// counts and every rejected row with its number and reason.
pub(crate) async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(&["contacts:write", "campaigns:manage"])?;
    let filename = q.filename.unwrap_or_else(|| "upload.csv".into());
    match outdial_control::import::import_contacts(
        &state.svc,
        auth.org_id,
        CampaignId(id),
        &filename,
        &body,
    )
    .await
    {
        Ok(report) => Ok(Json(json!(report))),
        Err(ImportFailure::File(e)) => Err(ApiError::Validation(e.to_string())),
        Err(ImportFailure::Store(e)) => Err(e.into()),
    }
}
