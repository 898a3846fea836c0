//! Bearer tokens (product §10): `Authorization: Bearer <token>`. A token belongs to one
//! organization and carries scopes; handlers ask for the scopes they need, and every
//! lookup is scoped to the token's organization.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use outdial_domain::OrgId;

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// the token's organization: the only one it can see
    pub org_id: OrgId,
    /// token row id (recorded as the actor of campaign changes)
    pub token_id: i64,
    /// granted scopes, e.g. `campaigns:read` (product §10)
    pub scopes: Vec<String>,
}

impl Auth {
    /// Passes when the token has any of `scopes`.
    ///
    /// Errors: [`ApiError::Forbidden`] naming the scopes that would do.
    pub fn require_any(&self, scopes: &[&str]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.scopes.iter().any(|t| t == s)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scopes.join(", ")))
        }
    }

    /// The actor name recorded for changes made with this token.
    pub fn actor(&self) -> String {
        format!("api:token:{}", self.token_id)
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let secret = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized)?
            .trim();
        let grant = state
            .svc
            .store
            .authenticate(secret)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Self {
            org_id: grant.org_id,
            token_id: grant.token_id,
            scopes: grant.scopes,
        })
    }
}
