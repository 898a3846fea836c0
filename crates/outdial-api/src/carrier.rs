//! Carrier webhooks (product §5.7, §10): status callbacks signed with `X-Twilio-Signature`.
//!
//! The signature is checked against the URL the carrier was given — the configured `api.public_url`
//! plus this request's path and query — and the form parameters. A forged or altered callback is
//! answered 403 and nothing is written. A genuine progress callback (`initiated`, `ringing`,
//! `in-progress`) is acknowledged and nothing else: outcomes need only the final status. A genuine
//! final one becomes a `CallStatus` job on `campaign-dialer` (deduplicated per attempt and status,
//! so a carrier retry is harmless) and is answered 204 only once it is durably queued; if Redis is
//! down the answer is 503 and the carrier retries.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use outdial_carrier::callback::{CallStatusCallback, MessageStatusCallback};
use outdial_carrier::signature;
use outdial_domain::{AttemptId, ContactId};
use outdial_fleet::jobs::DialerJob;

use crate::AppState;
use crate::error::ApiError;

/// Verifies the signature of a carrier request and returns its form parameters.
///
/// Errors: 403 [`ApiError::InvalidSignature`] for a missing or wrong signature.
pub(crate) fn verified_params(
    state: &AppState,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, ApiError> {
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let given = headers
        .get(signature::HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::InvalidSignature)?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = format!(
        "{}{path}",
        state.svc.config.api.public_url.trim_end_matches('/')
    );
    if !signature::verify(
        state.svc.config.carrier.auth_token.expose(),
        &url,
        &params,
        given,
    ) {
        metrics::counter!("outdial_api_webhooks_total", "result" => "forged").increment(1);
        return Err(ApiError::InvalidSignature);
    }
    Ok(params)
}

/// The numeric `?<name>=<id>` of a callback URL.
fn id_param(uri: &axum::http::Uri, name: &str) -> Result<i64, ApiError> {
    let query = uri.query().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the callback URL has no numeric `{name}` parameter"
            ))
        })
}

/// Queues a verified callback's job on `campaign-dialer`, due now, and answers 204 once it
/// is durably queued (deduplicated by the job's id, so a carrier retry is harmless).
///
/// Errors: 503 when Redis is unavailable (the carrier retries).
async fn accept(state: &AppState, job: DialerJob) -> Result<StatusCode, ApiError> {
    let now = state.svc.clock.now_ms();
    state.svc.dialer_queue.enqueue(&[job.at(now)], now).await?;
    metrics::counter!("outdial_api_webhooks_total", "result" => "accepted").increment(1);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /carrier/voice/status?attempt=<id>`: a call status callback.
pub(crate) async fn voice_status(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let params = verified_params(&state, &uri, &headers, &body)?;
    let attempt_id = AttemptId(id_param(&uri, "attempt")?);
    let cb = CallStatusCallback::from_params(&params)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !cb.is_final() {
        // Progress (`initiated`, `ringing`, `in-progress`): the outcome needs only the final
        // status, which carries the CallSid too; acknowledged, nothing to do.
        metrics::counter!("outdial_api_webhooks_total", "result" => "progress").increment(1);
        return Ok(StatusCode::NO_CONTENT);
    }
    let job = DialerJob::CallStatus {
        attempt_id,
        call_sid: cb.call_sid,
        call_status: cb.call_status,
        call_duration_s: cb.call_duration_s,
        answered_by: cb.answered_by,
        sip_response_code: cb.sip_response_code,
        spam_flagged: cb.spam_flagged,
    };
    accept(&state, job).await
}

/// `POST /carrier/sms/status?contact=<id>`: a message delivery receipt (product §6). Verified
/// like a call callback; becomes an `SmsStatus` job deduplicated per contact and status.
pub(crate) async fn sms_status(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let params = verified_params(&state, &uri, &headers, &body)?;
    let contact_id = ContactId(id_param(&uri, "contact")?);
    let cb = MessageStatusCallback::from_params(&params)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let job = DialerJob::SmsStatus {
        contact_id,
        message_sid: cb.message_sid,
        message_status: cb.message_status,
        error_code: cb.error_code,
    };
    accept(&state, job).await
}

/// `GET|POST /carrier/voice/twiml`: call instructions for answered calls (a plain call:
/// the agent integration replaces this URL per campaign in production).
pub(crate) async fn twiml() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Hello from outdial.</Say><Hangup/></Response>",
    )
}
