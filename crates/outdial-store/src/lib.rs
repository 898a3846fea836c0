//! # outdial-store
//!
//! Postgres is outdial's source of truth (product §3): contacts, campaigns, attempts, DIDs and
//! their health live here; Redis only holds what can be rebuilt from it. This crate owns
//! the schema ([`MIGRATOR`], from `migrations/` at the workspace root) and every query, and
//! returns `outdial-domain` types.
//!
//! Every "now" is a parameter: queries never call `now()`, so the injected clock rules
//! (product §3 "Time").
//!
//! | module | tables |
//! |---|---|
//! | [`bench`](mod@bench) | synthetic data for `outdialctl bench dispatch` |
//! | [`orgs`] | organizations, api_tokens, suppressions |
//! | [`campaigns`] | campaigns, campaign_transitions, campaign_timezones |
//! | [`contacts`] | contacts, uploads |
//! | [`dialing`] | the hot path: dispatch cycle, tick claims, attempts, completion |
//! | [`dids`] | dids, did_health_events |
//! | [`sms`] | sms_messages: prospect claim, per-DID gap on `last_sms_at`, forward-only status |
//! | [`stats`] | campaign_stats and the aggregates behind it (counts by status, attempt figures) |
//! | `statuses` | contact status groups as SQL, from the domain's groups |

pub mod bench;
pub mod campaigns;
pub mod contacts;
pub mod dialing;
pub mod dids;
pub mod orgs;
pub mod sms;
pub mod stats;
mod statuses;
#[cfg(feature = "worker")]
mod worker;

use outdial_domain::phone::E164;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The migrations in `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (or belongs to another organization).
    #[error("{what} {id} not found")]
    NotFound {
        /// kind of thing
        what: &'static str,
        /// the id looked up, as text
        id: String,
    },
    /// A unique constraint refused the write (Postgres 23505).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The input broke a rule (a CHECK constraint, a bad value).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A campaign status change that the state machine forbids (product §8).
    #[error(transparent)]
    IllegalTransition(#[from] outdial_domain::campaign::IllegalTransition),
    /// A stored value that does not parse (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("postgres: {0}")]
    Db(sqlx::Error),
    /// A request submitted for a batched write (gathered completions, call SIDs) got no
    /// result: the writer stopped, or answered the batch short. Nothing is known to be
    /// written for it; retrying is safe (batched writes are compare-and-set).
    #[error("batched write: {0}")]
    Batch(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if connection_broken(&e) {
            suspect_connections();
        }
        if let sqlx::Error::Database(db) = &e {
            match db.code().as_deref() {
                Some("23505") => return Self::AlreadyExists(db.message().to_owned()),
                Some("23514" | "22P02" | "23502" | "22003") => {
                    return Self::Invalid(db.message().to_owned());
                }
                _ => {}
            }
        }
        Self::Db(e)
    }
}

impl StoreError {
    /// Whether the failure is an outage that retrying can outlast — the database
    /// unreachable, the pool exhausted, a connection dropped, a serialization failure or
    /// deadlock, the server shutting down or out of resources, a batched write that got no
    /// answer — rather than a fact about the data (not found, corrupt, invalid, a conflict, a
    /// forbidden transition) or a statement that cannot work (a decode or SQL error). An
    /// outage must never dead-letter good work (product §3 "Retries", "Outages").
    pub fn is_transient(&self) -> bool {
        match self {
            Self::NotFound { .. }
            | Self::AlreadyExists(_)
            | Self::Invalid(_)
            | Self::IllegalTransition(_)
            | Self::Corrupt(_) => false,
            Self::Batch(_) => true,
            Self::Db(e) => match e {
                // SQLSTATE classes: 08 connection, 40 transaction rollback (serialization,
                // deadlock), 53 insufficient resources, 55 lock not available, 57 operator
                // intervention (admin shutdown, cannot connect now), 58 system error.
                sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                    ["08", "40", "53", "55", "57", "58"]
                        .iter()
                        .any(|p| c.starts_with(p))
                }),
                sqlx::Error::RowNotFound
                | sqlx::Error::TypeNotFound { .. }
                | sqlx::Error::ColumnIndexOutOfBounds { .. }
                | sqlx::Error::ColumnNotFound(_)
                | sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::Decode(_)
                | sqlx::Error::Encode(_)
                | sqlx::Error::Configuration(_)
                | sqlx::Error::Migrate(_) => false,
                _ => true,
            },
        }
    }

    /// Whether the failure is an outage of Postgres rather than a fault of the request or
    /// of the data: the database unreachable or shutting down, the pool exhausted or closed,
    /// a connection dropped or reset, the server out of resources (SQLSTATE classes 08, 53,
    /// 57, 58), or a batched write that got no result. A subset of
    /// [`Self::is_transient`]: serialization failures and lock timeouts (classes 40, 55)
    /// are contention, retried as ordinary failures. Jobs wait out an outage without using
    /// an attempt; the API answers it with 503 and `Retry-After` (product §3 "Outages").
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Batch(_) => true,
            Self::Db(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|c| ["08", "53", "57", "58"].iter().any(|p| c.starts_with(p))),
            Self::Db(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            _ => false,
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl std::fmt::Display) -> Self {
        Self::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

/// A one-row `FROM` item that makes the transaction it runs in commit asynchronously
/// (`synchronous_commit = off` for that transaction alone; in a single statement, for the
/// statement's own implicit transaction): the commit returns before its WAL is flushed to disk,
/// which the WAL writer does within ~3 × `wal_writer_delay` (600 ms by default).
///
/// Only for writes that are safe to lose in a Postgres crash because they are derived and
/// recomputed (a campaign's stats snapshot, a caller ID's score), because losing them leaves a
/// state that repairs itself (a dispatch cycle's admissions), or because the same value is written
/// again later (an attempt's call SID, again at its completion). A synchronous commit flushes all
/// WAL before its own record, so nothing committed synchronously afterwards can depend on a lost
/// asynchronous write.
pub(crate) const ASYNC_COMMIT: &str =
    "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit";

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// `n` as a Postgres `int` parameter named `what`.
///
/// Errors: [`StoreError::Invalid`] when it does not fit (a count or setting beyond
/// 2 147 483 647): refused, never saturated.
pub(crate) fn int_param<N>(n: N, what: &str) -> Result<i32>
where
    N: TryInto<i32> + Copy + std::fmt::Display,
{
    n.try_into().map_err(|_| too_large(what, n))
}

/// [`StoreError::Invalid`]: `what` = `n` does not fit its column.
pub(crate) fn too_large(what: &str, n: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("{what} {n} does not fit its column"))
}

/// An optional stored text parsed into its type (a status, a disposition, a reason).
///
/// Errors: [`StoreError::Corrupt`] for a text the type does not know.
pub(crate) fn parse_stored<T>(text: Option<String>) -> Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.map(|t| t.parse()).transpose().map_err(corrupt)
}

/// Stored phone numbers checked for their E.164 shape ([`E164::from_stored`]).
///
/// Errors: [`StoreError::Corrupt`] for a number of another shape.
pub(crate) fn stored_numbers(numbers: Vec<String>) -> Result<Vec<E164>> {
    numbers
        .into_iter()
        .map(E164::from_stored)
        .collect::<std::result::Result<_, _>>()
        .map_err(corrupt)
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store: a Postgres pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Wraps an existing pool.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Connects to `url` (a `postgres://` URL) with at most `max_connections`, with
    /// Postgres' JIT compilation off in its sessions.
    ///
    /// Errors: `url` does not parse, or the connection failed.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        // JIT off for the session: outdial's statements are short OLTP statements, but a
        // generic plan over an array parameter (the dispatch cycle's candidate read for
        // 2,000 campaigns) is estimated above `jit_above_cost`, and compiling it took ~20 ms
        // of a ~40 ms statement in most cycles (docs/BENCHMARKS.md, dispatch findings).
        let options = url.parse::<PgConnectOptions>()?.options([("jit", "off")]);
        let pool = pool_options(max_connections).connect_with(options).await?;
        Ok(Self { pool })
    }

    /// Applies pending migrations ([`MIGRATOR`]).
    ///
    /// Errors: a migration failed (it is rolled back).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// The Postgres pool, for callers that run their own statements or connections.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection from the pool, for functions of this crate that take `&mut
    /// PgConnection` (so the caller composes them on one connection).
    ///
    /// Errors: the pool timed out or the connection failed ([`StoreError::is_transient`]).
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    /// A transaction on a connection from the pool; commit it with [`commit`] (dropped, it
    /// rolls back).
    ///
    /// Errors: as [`Store::acquire`].
    pub async fn begin(&self) -> Result<Transaction> {
        Ok(self.pool.begin().await?)
    }
}

/// How long after a connection-level error pooled connections are pinged before use.
const SUSPECT_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// Until when (monotonic ms since [`suspect_epoch`]) connections are suspect; 0: never.
static SUSPECT_UNTIL_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn suspect_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

fn monotonic_ms() -> u64 {
    u64::try_from(suspect_epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Whether `e` says a connection itself failed (dropped, reset, terminated by the server),
/// so the pool's other idle connections may be dead too (a Postgres restart kills them all).
fn connection_broken(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
        _ => false,
    }
}

/// Marks this process's pooled connections suspect for [`SUSPECT_FOR`].
fn suspect_connections() {
    let until = monotonic_ms() + u64::try_from(SUSPECT_FOR.as_millis()).unwrap_or(0);
    SUSPECT_UNTIL_MS.fetch_max(until, std::sync::atomic::Ordering::Relaxed);
}

/// The options of every pool outdial opens on Postgres: at most `max_connections`, a
/// 10 s acquire timeout, and a ping before a connection is handed out only while
/// connections are suspect — for 10 s after any connection-level error in this process (a
/// dropped or reset connection, a server shutting down: SQLSTATE 08, 57). A restarted
/// Postgres leaves every pooled connection dead; each is found by its ping and replaced
/// instead of failing a job or an API request, while in normal running a query costs no
/// extra round trip (an unconditional ping doubled the round trips of every
/// single-statement query).
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, _meta| {
            Box::pin(async move {
                if SUSPECT_UNTIL_MS.load(std::sync::atomic::Ordering::Relaxed) <= monotonic_ms() {
                    return Ok(true);
                }
                use sqlx::Connection as _;
                Ok(conn.ping().await.is_ok())
            })
        })
}

/// A Postgres transaction of the store's pool.
pub type Transaction = sqlx::Transaction<'static, sqlx::Postgres>;

/// Commits `tx`.
///
/// Errors: the commit failed (nothing of the transaction is written).
pub async fn commit(tx: Transaction) -> Result<()> {
    Ok(tx.commit().await?)
}

/// Rolls `tx` back (as dropping it would, but at once and with the error reported).
///
/// Errors: the connection failed (Postgres rolls the transaction back anyway).
pub async fn rollback(tx: Transaction) -> Result<()> {
    Ok(tx.rollback().await?)
}

/// Creates database `name` on the server of `admin_url` unless it exists. Returns the URL of
/// the new database. Used by `outdialctl migrate --create` and the demo.
///
/// Errors: the admin connection failed, or `name` is not a plain identifier.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Invalid(format!(
            "database name {name:?} must be [A-Za-z0-9_]+"
        )));
    }
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&admin)
            .await?;
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await?;
    }
    admin.close().await;
    Ok(replace_database(admin_url, name))
}

/// Drops database `name` (forcibly disconnecting its sessions) if it exists.
///
/// Errors: the admin connection failed, or `name` is not a plain identifier.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Invalid(format!(
            "database name {name:?} must be [A-Za-z0-9_]+"
        )));
    }
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    admin.close().await;
    Ok(())
}

/// `url` with its database name replaced by `name` (query string kept).
pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replace_database_keeps_host_and_query() {
        assert_eq!(
            super::replace_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::replace_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        // A Unix-socket URL: the slashes of its query are not the database's.
        assert_eq!(
            super::replace_database(
                "postgres://postgres@localhost/postgres?host=/var/run/postgresql",
                "outdial_test_1_ab"
            ),
            "postgres://postgres@localhost/outdial_test_1_ab?host=/var/run/postgresql"
        );
    }
}
