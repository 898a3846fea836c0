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
//! and `DATABASE_URL` ([`admin_database_url`]; default
//! `postgres://postgres@127.0.0.1:5432/postgres`), the admin connection that creates and
//! drops test databases — the same variable `#[sqlx::test]` reads (set for every cargo
//! command by `.cargo/config.toml`), so the store's tests and every other test use one
//! server.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// `OUTDIAL_TEST_REDIS_URL`, else `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("OUTDIAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The admin Postgres URL of the tests (a database that always exists): `DATABASE_URL`,
/// the variable `#[sqlx::test]` reads, else `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn admin_database_url() -> String {
    std::env::var("DATABASE_URL")
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
    pub pool: outdial_queue::pool::Pool,
    /// Client for dedicated connections (pub/sub).
    pub client: redis::Client,
    /// The key prefix, e.g. `test-1a2b3c4d:`.
    pub prefix: String,
    /// The URL it connected to ([`redis_url`]).
    pub url: String,
}

impl TestRedis {
    /// Connects to the test Redis with a fresh random prefix.
    ///
    /// # Panics
    /// When Redis is unreachable: the tests need it (`.ci/run` starts it).
    pub async fn new() -> Self {
        let url = redis_url();
        let pool = outdial_queue::pool::pool(&url, 16).expect("redis pool config");
        let mut conn = pool
            .get()
            .await
            .expect("redis reachable for tests (is redis-server running?)");
        let _: String = redis::cmd("PING")
            .query_async(&mut *conn)
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
                .query_async(&mut *conn)
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

/// A uniquely named, migrated Postgres database.
///
/// Call [`TestDb::cleanup`] at the end of the test to drop it. A test that panics leaves its
/// database behind; every [`TestDb::new`] drops test databases older than
/// [`STALE_AFTER_S`], so leftovers never accumulate. (Dropping from `Drop` is not possible:
/// it would block the test's runtime while a nested one waits on connections owned by it.)
pub struct TestDb {
    /// Pool on the test database.
    pub pool: PgPool,
    /// URL of the test database (for child processes).
    pub url: String,
    name: String,
}

/// Test databases older than this are dropped by the next [`TestDb::new`], s.
pub const STALE_AFTER_S: u64 = 1_800;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TestDb {
    /// Creates database `outdial_test_<unix seconds>_<hex>` and applies `migrator`.
    ///
    /// # Panics
    /// When Postgres is unreachable or the migrations fail.
    pub async fn new(migrator: &Migrator) -> Self {
        let admin_url = admin_database_url();
        let name = format!("outdial_test_{}_{}", unix_now(), random_hex(4));
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .expect("postgres reachable for tests");
        let existing: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'outdial\\_test\\_%'",
        )
        .fetch_all(&admin)
        .await
        .unwrap_or_default();
        for old in existing {
            let born = old
                .split('_')
                .nth(2)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0);
            if born + STALE_AFTER_S < unix_now() {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {old} WITH (FORCE)"
                )))
                .execute(&admin)
                .await;
            }
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = outdial_store::replace_database(&admin_url, &name);
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect(&url)
            .await
            .expect("connect test database");
        migrator.run(&pool).await.expect("migrations");
        Self { pool, url, name }
    }

    /// Closes the pool and drops the database (ending any other session on it).
    pub async fn cleanup(self) {
        self.pool.close().await;
        if let Ok(admin) = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_database_url())
            .await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&admin)
            .await;
            admin.close().await;
        }
    }
}

/// Child processes for binary tests: start with an environment, wait for the ready line,
/// stop with SIGTERM.
pub mod process {
    use std::collections::BTreeMap;
    use std::process::Stdio;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::process::{Child, Command};

    /// A started binary.
    pub struct Started {
        /// the child (killed on drop)
        pub child: Child,
        /// the stdout line that contained the ready marker
        pub ready_line: String,
    }

    /// Starts `bin` with exactly `env` (plus PATH/HOME) and waits up to 30 s for a stdout
    /// line containing `ready`. Stderr is inherited (shows in test output on failure).
    ///
    /// # Panics
    /// When the binary cannot start, exits, or never prints the line.
    pub async fn start(bin: &str, env: &BTreeMap<String, String>, ready: &str) -> Started {
        let mut cmd = Command::new(bin);
        cmd.env_clear();
        for key in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        cmd.envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(ready) {
                    return Some(line);
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("{bin} did not print {ready:?} within 30 s"))
        .unwrap_or_else(|| panic!("{bin} exited before printing {ready:?}"));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Started {
            child,
            ready_line: line,
        }
    }

    /// Sends SIGTERM and waits up to `within` for the exit; returns the exit code.
    ///
    /// # Panics
    /// When the process does not exit in time.
    pub async fn terminate(mut started: Started, within: Duration) -> Option<i32> {
        let pid = started
            .child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .expect("running child");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let status = tokio::time::timeout(within, started.child.wait())
            .await
            .expect("exit within the grace period")
            .expect("wait");
        status.code()
    }

    /// The contract every fleet binary keeps (product §2, §9): started on a fresh test database
    /// (migrated by `migrator`) and Redis prefix, it prints a stdout line containing `ready`
    /// with a `metrics=http://…/metrics` URL, serves Prometheus text there, and exits with
    /// code 0 within 20 s of SIGTERM.
    ///
    /// # Panics
    /// When any of that does not hold, or a service is unreachable.
    pub async fn assert_serves_metrics_and_stops_on_sigterm(
        bin: &str,
        ready: &str,
        migrator: &sqlx::migrate::Migrator,
    ) {
        let db = crate::TestDb::new(migrator).await;
        let redis = crate::TestRedis::new().await;
        let started = start(bin, &crate::fleet_env(&db, &redis), ready).await;
        let url = metrics_url(&started.ready_line).expect("metrics URL in the ready line");
        let response = reqwest::get(&url).await.expect("GET /metrics");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        if let Err(why) = check_metrics(process_name(bin), status, &body) {
            panic!("GET {url}: {why}");
        }
        assert_eq!(
            terminate(started, Duration::from_secs(20)).await,
            Some(0),
            "graceful exit on SIGTERM"
        );
        db.cleanup().await;
    }

    /// A fleet binary given an unknown setting (`OUTDIAL_DIALER__POLL_INTERVAL`, missing its
    /// `_MS`) exits unsuccessfully and its stderr names the key (docs/configuration.md).
    ///
    /// # Panics
    /// When it starts anyway or the message does not name the key.
    pub async fn assert_refuses_an_unknown_setting(bin: &str) {
        let out = Command::new(bin)
            .env_clear()
            .env("OUTDIAL_DIALER__POLL_INTERVAL", "5")
            .output()
            .await
            .expect("run");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("poll_interval"),
            "names the bad key: {stderr}"
        );
    }

    /// Whether a `/metrics` answer (`status`, `body`) is an outdial exporter's for
    /// `process`: 200 with `outdial_build_info{process="<process>"}` in Prometheus text.
    ///
    /// Errors: what is wrong with the answer (an error status, an empty or foreign body).
    pub fn check_metrics(process: &str, status: u16, body: &str) -> Result<(), String> {
        if status != 200 {
            return Err(format!("status {status}, not 200"));
        }
        if !body.contains("# TYPE outdial_build_info gauge") {
            return Err(format!("no outdial_build_info gauge in {body:?}"));
        }
        if !body.contains(&format!("process=\"{process}\"")) {
            return Err(format!("outdial_build_info is not {process}'s: {body:?}"));
        }
        Ok(())
    }

    /// The process name of binary path `bin` (`…/outdial-dialer` → `outdial-dialer`).
    fn process_name(bin: &str) -> &str {
        std::path::Path::new(bin)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(bin)
    }

    /// The `http://…/metrics` URL in a ready line (`… metrics=http://127.0.0.1:PORT/metrics`).
    pub fn metrics_url(ready_line: &str) -> Option<String> {
        ready_line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("metrics="))
            .map(str::to_owned)
    }
}

/// `OUTDIAL_…` variables pointing a binary at the test services: `db`'s database, `redis`'s
/// prefix, metrics on a free port.
pub fn fleet_env(db: &TestDb, redis: &TestRedis) -> std::collections::BTreeMap<String, String> {
    [
        ("OUTDIAL_POSTGRES__URL", db.url.clone()),
        ("OUTDIAL_REDIS__URL", redis.url.clone()),
        ("OUTDIAL_REDIS__PREFIX", redis.prefix.clone()),
        ("OUTDIAL_METRICS__LISTEN", "127.0.0.1:0".to_owned()),
        ("OUTDIAL_API__LISTEN", "127.0.0.1:0".to_owned()),
        ("OUTDIAL_LOG__FILTER", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::process::check_metrics;

    #[test]
    fn only_an_outdial_exporters_metrics_pass() {
        let good = "# TYPE outdial_build_info gauge\noutdial_build_info{process=\"outdial-dialer\",version=\"0.1.0\"} 1\n";
        assert_eq!(check_metrics("outdial-dialer", 200, good), Ok(()));
        assert!(check_metrics("outdial-dialer", 404, "").is_err(), "a 404");
        assert!(
            check_metrics("outdial-dialer", 200, "").is_err(),
            "an empty body"
        );
        assert!(
            check_metrics("outdial-dialer", 200, "# TYPE go_goroutines gauge\n").is_err(),
            "someone else's exporter"
        );
        assert!(
            check_metrics("outdial-api", 200, good).is_err(),
            "another process's"
        );
    }
}
