//! Organizations, API tokens and the suppression (DNC) list (product §4, §5.1, §10).

use chrono::{DateTime, Utc};
use outdial_domain::OrgId;
use outdial_domain::phone::E164;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Result, Store, StoreError};

/// Scopes a token may carry (product §10; `campaign/concurrency-settings` rules in §10 use the
/// first four).
pub const KNOWN_SCOPES: &[&str] = &[
    "campaigns:read",
    "campaigns:manage",
    "concurrency:read",
    "concurrency:manage",
    "contacts:write",
    "calls:write",
    "dids:read",
    "dids:manage",
    "events:read",
];

/// Default `concurrency_limit` of an organization (product §4).
pub const DEFAULT_CONCURRENCY_LIMIT: i32 = 10;

/// An organization (tenant): owns campaigns, DIDs and tokens; its limit caps their calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    /// row id; `outdialctl` takes it or the name
    pub id: OrgId,
    /// unique name
    pub name: String,
    /// simultaneous calls allowed (1..=10000)
    pub concurrency_limit: i32,
    /// when it was created (injected clock)
    pub created_at: DateTime<Utc>,
}

/// The organization a valid token belongs to, with the token's scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// Organization of the token.
    pub org_id: OrgId,
    /// Token row id.
    pub token_id: i64,
    /// Scopes granted to the token, e.g. `campaigns:read` (product §10).
    pub scopes: Vec<String>,
}

fn sha256(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl Store {
    /// Creates organization `name` with `concurrency_limit` (None → 10).
    ///
    /// Errors: [`StoreError::AlreadyExists`] for a taken name, [`StoreError::Invalid`] for a
    /// limit outside 1..=10000.
    pub async fn create_org(
        &self,
        name: &str,
        concurrency_limit: Option<i32>,
        now: DateTime<Utc>,
    ) -> Result<Organization> {
        let row = sqlx::query_as::<_, (i64, String, i32, DateTime<Utc>)>(
            "INSERT INTO organizations (name, concurrency_limit, created_at) VALUES ($1, $2, $3)
             RETURNING id, name, concurrency_limit, created_at",
        )
        .bind(name)
        .bind(concurrency_limit.unwrap_or(DEFAULT_CONCURRENCY_LIMIT))
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(org_from_row(row))
    }

    /// The organization `id`.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub async fn org(&self, id: OrgId) -> Result<Organization> {
        sqlx::query_as::<_, (i64, String, i32, DateTime<Utc>)>(
            "SELECT id, name, concurrency_limit, created_at FROM organizations WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .map(org_from_row)
        .ok_or_else(|| StoreError::not_found("organization", id))
    }

    /// The organization named `name`, if any.
    ///
    /// Errors: database failures.
    pub async fn org_by_name(&self, name: &str) -> Result<Option<Organization>> {
        Ok(sqlx::query_as::<_, (i64, String, i32, DateTime<Utc>)>(
            "SELECT id, name, concurrency_limit, created_at FROM organizations WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .map(org_from_row))
    }

    /// Every organization, by id.
    ///
    /// Errors: database failures.
    pub async fn orgs(&self) -> Result<Vec<Organization>> {
        Ok(sqlx::query_as::<_, (i64, String, i32, DateTime<Utc>)>(
            "SELECT id, name, concurrency_limit, created_at FROM organizations ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(org_from_row)
        .collect())
    }

    /// Sets an organization's `concurrency_limit` (product §4: 1..=10000).
    ///
    /// Errors: [`StoreError::Invalid`] outside the range, [`StoreError::NotFound`].
    pub async fn set_concurrency_limit(&self, id: OrgId, limit: i32) -> Result<Organization> {
        if !(1..=10_000).contains(&limit) {
            return Err(StoreError::Invalid(format!(
                "concurrency_limit {limit} is outside 1..=10000"
            )));
        }
        sqlx::query_as::<_, (i64, String, i32, DateTime<Utc>)>(
            "UPDATE organizations SET concurrency_limit = $2 WHERE id = $1 RETURNING id, name, concurrency_limit, created_at",
        )
        .bind(id.0)
        .bind(limit)
        .fetch_optional(&self.pool)
        .await?
        .map(org_from_row)
        .ok_or_else(|| StoreError::not_found("organization", id))
    }

    /// Mints a bearer token for `org` with `scopes`. Returns the token id and the secret,
    /// which is shown once: only its SHA-256 is stored.
    ///
    /// Errors: [`StoreError::Invalid`] for an unknown scope or no scope,
    /// [`StoreError::NotFound`] for an unknown organization.
    pub async fn create_token(
        &self,
        org: OrgId,
        name: &str,
        scopes: &[String],
        now: DateTime<Utc>,
    ) -> Result<(i64, String)> {
        if scopes.is_empty() {
            return Err(StoreError::Invalid(
                "a token needs at least one scope".into(),
            ));
        }
        if let Some(bad) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
            return Err(StoreError::Invalid(format!(
                "unknown scope {bad:?}; known: {}",
                KNOWN_SCOPES.join(", ")
            )));
        }
        self.org(org).await?;
        let secret = format!("odt_{}", hex::encode(rand::random::<[u8; 24]>()));
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (org_id, name, token_sha256, scopes, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(org.0)
        .bind(name)
        .bind(sha256(&secret))
        .bind(scopes)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok((id, secret))
    }

    /// Resolves a bearer token secret to its organization and scopes; `None` for an unknown
    /// or revoked token.
    ///
    /// Errors: database failures.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<TokenGrant>> {
        let row: Option<(i64, i64, Vec<String>)> =
            sqlx::query_as("SELECT id, org_id, scopes FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL")
                .bind(sha256(secret))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(token_id, org, scopes)| TokenGrant {
            org_id: OrgId(org),
            token_id,
            scopes,
        }))
    }

    /// Adds `phones` to `org`'s suppression list with `reason` (e.g. `dnc`). Returns how
    /// many were new.
    ///
    /// Errors: database failures.
    pub async fn add_suppressions(
        &self,
        org: OrgId,
        phones: &[E164],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let done = sqlx::query(
            "INSERT INTO suppressions (org_id, phone, reason, created_at)
             SELECT $1, p, $3, $4 FROM unnest($2::text[]) AS p
             ON CONFLICT (org_id, phone) DO NOTHING",
        )
        .bind(org.0)
        .bind(phones.iter().map(E164::as_str).collect::<Vec<_>>())
        .bind(reason)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

fn org_from_row(
    (id, name, concurrency_limit, created_at): (i64, String, i32, DateTime<Utc>),
) -> Organization {
    Organization {
        id: OrgId(id),
        name,
        concurrency_limit,
        created_at,
    }
}
