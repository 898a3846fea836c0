//! API errors (product §10): JSON `{"error": {"code", "message", …}}` with a stable code; bad
//! input is 4xx, never 500; 500s are opaque (details go to the log).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outdial_store::StoreError;
use serde_json::json;

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `unauthorized`: no bearer token, or an unknown one.
    #[error("missing or unknown bearer token")]
    Unauthorized,
    /// 403 `forbidden`: the token lacks a scope.
    #[error("this token needs one of the scopes: {0}")]
    Forbidden(String),
    /// 403 `invalid_signature`: a carrier webhook whose signature does not verify.
    #[error("the X-Twilio-Signature does not match this request")]
    InvalidSignature,
    /// 404 `not_found` (also for another organization's data).
    #[error("{0}")]
    NotFound(String),
    /// 409 `illegal_transition` with the current status.
    #[error("{message}")]
    Conflict {
        /// human text
        message: String,
        /// the status the campaign is in, which refused the command
        current_status: String,
    },
    /// 400 `bad_request`: unreadable input (not JSON, not a form, missing parameter).
    #[error("{0}")]
    BadRequest(String),
    /// 422 `validation_failed`: well-formed input breaking a rule.
    #[error("{0}")]
    Validation(String),
    /// 503 `unavailable` with `Retry-After` ([`RETRY_AFTER_S`]): a backing service
    /// (Postgres, Redis) is down or saturated; retry.
    #[error("a backing service is unavailable; retry")]
    Unavailable(String),
    /// 500 `internal`: details logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::InvalidSignature => (StatusCode::FORBIDDEN, "invalid_signature"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict { .. } => (StatusCode::CONFLICT, "illegal_transition"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        match &self {
            Self::Internal(detail) | Self::Unavailable(detail) => {
                tracing::error!(code, detail = %detail, "request failed");
            }
            _ => tracing::debug!(code, message = %self, "request refused"),
        }
        let mut body = json!({ "error": { "code": code, "message": self.to_string() } });
        if let Self::Conflict { current_status, .. } = &self {
            body["error"]["current_status"] = json!(current_status);
        }
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::Unavailable(_)) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(RETRY_AFTER_S),
            );
        }
        response
    }
}

/// Seconds a client is asked to wait (`Retry-After`) after a 503: the fleet retries its
/// own work every ≤ 2 s during an outage, so an integrator retrying sooner gains nothing.
pub const RETRY_AFTER_S: u32 = 2;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => Self::NotFound(e.to_string()),
            StoreError::AlreadyExists(m) => Self::Validation(format!("already exists: {m}")),
            StoreError::Invalid(m) => Self::Validation(m),
            StoreError::IllegalTransition(t) => Self::Conflict {
                message: t.to_string(),
                current_status: t.current.to_string(),
            },
            StoreError::Corrupt(m) => Self::Internal(m),
            StoreError::Batch(m) => Self::Unavailable(m),
            StoreError::Db(_) if e.is_transient() => Self::Unavailable(e.to_string()),
            StoreError::Db(db) => Self::Internal(db.to_string()),
        }
    }
}

impl From<outdial_control::ControlError> for ApiError {
    fn from(e: outdial_control::ControlError) -> Self {
        match e {
            outdial_control::ControlError::Store(e) => e.into(),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<outdial_queue::QueueError> for ApiError {
    fn from(e: outdial_queue::QueueError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// Parses a JSON body into `T`.
///
/// Errors: 400 for text that is not JSON, 422 for JSON of the wrong shape.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::BadRequest(format!("body is not JSON: {e}"))
        } else {
            ApiError::Validation(e.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outage_is_a_503_with_retry_after_and_a_json_code() {
        for e in [
            StoreError::Db(sqlx::Error::PoolTimedOut),
            StoreError::Db(sqlx::Error::Io(
                std::io::ErrorKind::ConnectionRefused.into(),
            )),
        ] {
            assert!(e.is_outage());
            let response = ApiError::from(e).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                response.headers()[axum::http::header::RETRY_AFTER],
                RETRY_AFTER_S.to_string()
            );
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .expect("body");
            let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(json["error"]["code"], "unavailable");
        }
    }
}
