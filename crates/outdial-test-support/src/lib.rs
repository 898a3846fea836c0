//! # outdial-test-support
//!
//! Fixtures for tests that talk to the real services (never mocks):
//!
//! - [`TestRedis`]: a connection pool plus a random key prefix (`test-<hex>:`), so tests run
//!   in parallel on one Redis; every key under the prefix is deleted on drop, panics
//!   included.
//! - [`TestDb`]: a freshly created, uniquely named Postgres database with outdial's
//!   migrations applied, dropped on drop. (Tests of the store crate itself use
//!   `#[sqlx::test(migrator = "outdial_store::MIGRATOR")]` instead.)
//!
//! Service addresses come from `OUTDIAL_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`)
//! and `OUTDIAL_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`,
//! used as the admin connection that creates and drops test databases).

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// Redis URL for tests.
pub fn redis_url() -> String {
    std::env::var("OUTDIAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Admin Postgres URL for tests (a database that always exists).
pub fn admin_database_url() -> String {
    std::env::var("OUTDIAL_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// A Redis pool and a private key prefix; keys under the prefix are deleted on drop.
pub struct TestRedis {
    /// Pool on the test Redis.
    pub pool: deadpool_redis::Pool,
    /// Client for dedicated connections (pub/sub).
    pub client: redis::Client,
    /// The key prefix, e.g. `test-1a2b3c4d:`.
    pub prefix: String,
    /// The Redis URL.
    pub url: String,
}

impl TestRedis {
    /// Connects to the test Redis with a fresh random prefix.
    ///
    /// # Panics
    /// When Redis is unreachable: the tests need it (`.ci/run` starts it).
    pub async fn new() -> Self {
        let url = redis_url();
        let pool = deadpool_redis::Config::from_url(&url)
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .expect("redis pool config");
        let mut conn = pool
            .get()
            .await
            .expect("redis reachable for tests (is redis-server running?)");
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .expect("redis PING");
        let client = redis::Client::open(url.as_str()).expect("redis url");
        Self {
            pool,
            client,
            prefix: format!("test-{}:", random_hex(6)),
            url,
        }
    }

    /// All keys under this prefix (including `{prefix…}` hash-tagged ones), sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.pool.get().await.expect("redis");
        let mut keys = Vec::new();
        for pattern in [format!("{}*", self.prefix), format!("{{{}*", self.prefix)] {
            let found: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .expect("KEYS");
            keys.extend(found);
        }
        keys.sort();
        keys
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(mut conn) = self
            .client
            .get_connection_with_timeout(Duration::from_secs(2))
        else {
            return;
        };
        for pattern in [format!("{}*", self.prefix), format!("{{{}*", self.prefix)] {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
        }
    }
}

/// A uniquely named, migrated Postgres database, dropped on drop.
pub struct TestDb {
    /// Pool on the test database.
    pub pool: PgPool,
    /// URL of the test database (for child processes).
    pub url: String,
    name: String,
}

impl TestDb {
    /// Creates database `outdial_test_<hex>` and applies `migrator`.
    ///
    /// # Panics
    /// When Postgres is unreachable or the migrations fail.
    pub async fn new(migrator: &Migrator) -> Self {
        let admin_url = admin_database_url();
        let name = format!("outdial_test_{}", random_hex(6));
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .expect("postgres reachable for tests");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("database url without a database name: {admin_url}"),
        };
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect(&url)
            .await
            .expect("connect test database");
        migrator.run(&pool).await.expect("migrations");
        Self { pool, url, name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let pool = self.pool.clone();
        // Drop runs inside the test's runtime; use a private one on another thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                pool.close().await;
                if let Ok(admin) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin_database_url())
                    .await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                }
            });
        })
        .join();
    }
}
