//! The simulator's HTTP surface (see the table in [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use outdial_domain::phone::E164;
use serde_json::{Value, json};

use crate::run::{CallJob, MessageJob, run_call, run_message};
use crate::state::Sim;
use crate::{SimCall, SimStats};

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account_sid}/Calls.json",
            post(create_call),
        )
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(create_message),
        )
        .route("/sim/script", post(set_script))
        .route("/sim/calls", get(list_calls))
        .route("/sim/stats", get(stats))
        .route("/healthz", get(healthz))
        .with_state(sim)
}

/// An error in the carrier's shape: `{code, message, more_info, status}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    fn bad_request(code: u32, message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        (self.status, Json(body)).into_response()
    }
}

/// Basic auth must name the configured account and token, and the path the same account.
fn authorize(sim: &Sim, path_account: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let valid = credentials
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .is_some_and(|(user, token)| {
            user == sim.cfg.account_sid
                && token == sim.cfg.auth_token
                && path_account == sim.cfg.account_sid
        });
    if valid {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: 20003,
            message: "Authenticate".to_owned(),
        })
    }
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn first<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Whether `raw` is a valid NANP number already written as E.164 (`+1` and ten digits).
fn is_nanp_e164(raw: &str) -> bool {
    raw.starts_with("+1") && E164::parse(raw).is_ok_and(|e164| e164.as_str() == raw)
}

/// Validated `To` and `From`: 21211 for a bad `To`, 21212 for a bad `From`, 21217 for an
/// unallocated `To`.
fn endpoints(sim: &Sim, params: &[(String, String)]) -> Result<(String, String), ApiError> {
    let to = first(params, "To").unwrap_or_default();
    if !is_nanp_e164(to) {
        return Err(ApiError::bad_request(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        ));
    }
    let from = first(params, "From").unwrap_or_default();
    if !is_nanp_e164(from) {
        return Err(ApiError::bad_request(
            21212,
            format!("The 'From' number {from} is not a valid phone number."),
        ));
    }
    if sim.cfg.unallocated.contains(to) {
        return Err(ApiError::bad_request(
            21217,
            format!("Phone number {to} does not appear to be valid."),
        ));
    }
    Ok((to.to_owned(), from.to_owned()))
}

/// The value of `key` if it is an absolute http(s) URL; 21205 otherwise.
fn http_url(params: &[(String, String)], key: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = first(params, key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(value.to_owned())),
        _ => Err(ApiError::bad_request(
            21205,
            format!("{key} is not a valid URL: {value}"),
        )),
    }
}

async fn create_call(
    State(sim): State<Arc<Sim>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&sim, &account_sid, &headers)?;
    let params = form(&body);
    let (to, from) = endpoints(&sim, &params)?;
    if http_url(&params, "Url")?.is_none() {
        return Err(ApiError::bad_request(
            21205,
            "Url parameter is required.".to_owned(),
        ));
    }
    let status_callback = http_url(&params, "StatusCallback")?;
    let events: BTreeSet<String> = params
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned))
        .collect();
    let machine_detection = matches!(
        first(&params, "MachineDetection"),
        Some("Enable" | "DetectMessageEnd")
    );

    let (sid, plan) = sim.new_call(&to, &from);
    tracing::debug!(call_sid = %sid, %to, outcome = plan.outcome.as_str(), "call accepted");
    let body = json!({
        "sid": sid,
        "account_sid": sim.cfg.account_sid,
        "to": to,
        "from": from,
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "answered_by": Value::Null,
        "uri": format!("/2010-04-01/Accounts/{}/Calls/{sid}.json", sim.cfg.account_sid),
    });
    let job = CallJob {
        sid,
        to,
        from,
        status_callback,
        events,
        machine_detection,
        plan,
    };
    sim.spawn(run_call(Arc::clone(&sim), job));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn create_message(
    State(sim): State<Arc<Sim>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&sim, &account_sid, &headers)?;
    let params = form(&body);
    let (to, from) = endpoints(&sim, &params)?;
    let text = first(&params, "Body").unwrap_or_default().to_owned();
    if text.is_empty() {
        return Err(ApiError::bad_request(
            21602,
            "Message body is required.".to_owned(),
        ));
    }
    let status_callback = http_url(&params, "StatusCallback")?;

    let (sid, outcome) = sim.new_message(&to, &from);
    tracing::debug!(message_sid = %sid, %to, outcome = outcome.as_str(), "message accepted");
    let body = json!({
        "sid": sid,
        "account_sid": sim.cfg.account_sid,
        "to": to,
        "from": from,
        "body": text,
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "num_segments": "1",
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{sid}.json", sim.cfg.account_sid),
    });
    let job = MessageJob {
        sid,
        to,
        from,
        status_callback,
        outcome,
    };
    sim.spawn(run_message(Arc::clone(&sim), job));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn set_script(
    State(sim): State<Arc<Sim>>,
    Json(scripts): Json<BTreeMap<String, Vec<String>>>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    match sim.set_scripts(scripts) {
        Ok(numbers) => Ok(Json(json!({ "numbers": numbers }))),
        Err(message) => Err((StatusCode::BAD_REQUEST, Json(json!({ "message": message })))),
    }
}

async fn list_calls(State(sim): State<Arc<Sim>>) -> Json<Vec<SimCall>> {
    Json(sim.calls())
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<SimStats> {
    Json(sim.stats())
}

async fn healthz() -> &'static str {
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanp_e164_must_already_be_normalised() {
        assert!(is_nanp_e164("+12125550100"));
        assert!(!is_nanp_e164("2125550100"), "parseable but not E.164 text");
        assert!(!is_nanp_e164("+1 212 555 0100"));
        assert!(!is_nanp_e164("+442071838750"), "not NANP");
        assert!(!is_nanp_e164("+1212555010"), "too short");
        assert!(
            !is_nanp_e164("+11235550100"),
            "area code cannot start with 1"
        );
        assert!(!is_nanp_e164(""));
    }
}
