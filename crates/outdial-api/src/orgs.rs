//! Organization settings and direct calls (product §4, §10).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use outdial_domain::phone::{E164, nanp_timezone_key};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, parse_json};

/// `GET /campaign/concurrency-settings`: the token's organization's `concurrency_limit`
/// (10 unless set). Any of `campaigns:read`, `campaigns:manage`, `concurrency:read`,
/// `concurrency:manage`.
pub(crate) async fn get_concurrency(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(&[
        "campaigns:read",
        "campaigns:manage",
        "concurrency:read",
        "concurrency:manage",
    ])?;
    let org = state.svc.store.org(auth.org_id).await?;
    Ok(Json(
        json!({ "organization_id": org.id, "concurrency_limit": org.concurrency_limit }),
    ))
}

/// Body of `PUT /campaign/concurrency-settings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConcurrencyBody {
    concurrency_limit: i64,
}

/// `PUT /campaign/concurrency-settings` `{"concurrency_limit": n}`, 1 ≤ n ≤ 10000 (else 422).
/// `campaigns:manage` or `concurrency:manage`.
pub(crate) async fn put_concurrency(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(&["campaigns:manage", "concurrency:manage"])?;
    let b: ConcurrencyBody = parse_json(&body)?;
    let limit = i32::try_from(b.concurrency_limit)
        .ok()
        .filter(|l| (1..=10_000).contains(l));
    let limit = limit.ok_or_else(|| {
        ApiError::Validation(format!(
            "concurrency_limit must be between 1 and 10000, got {}",
            b.concurrency_limit
        ))
    })?;
    let org = state
        .svc
        .store
        .set_concurrency_limit(auth.org_id, limit)
        .await?;
    Ok(Json(
        json!({ "organization_id": org.id, "concurrency_limit": org.concurrency_limit }),
    ))
}

/// Body of `POST /api/calls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallBody {
    /// numbers to try in order (any notation)
    phone_numbers: Vec<String>,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/calls` (calls:write): a direct call — a contact with no campaign. It bypasses
/// calling windows, is admitted before campaign contacts by the next dispatch cycle, and
/// uses the `api` channel pool. 202 with the contact.
pub(crate) async fn create_call(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_any(&["calls:write"])?;
    let b: CallBody = parse_json(&body)?;
    if b.phone_numbers.is_empty() {
        return Err(ApiError::Validation(
            "phone_numbers must not be empty".into(),
        ));
    }
    let numbers: Vec<E164> = b
        .phone_numbers
        .iter()
        .map(|raw| E164::parse(raw).map_err(|e| ApiError::Validation(e.to_string())))
        .collect::<Result<_, _>>()?;
    let tz = nanp_timezone_key(numbers[0].as_str()).unwrap_or("America/Los_Angeles");
    let contact = state
        .svc
        .store
        .create_direct_contact(
            auth.org_id,
            &numbers,
            tz,
            b.name.as_deref(),
            state.svc.clock.now(),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!(contact))))
}
