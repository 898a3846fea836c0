//! The Redis connection pool every outdial process uses (product §3 queues, the §4 channel
//! semaphore, §9 events).
//!
//! A [`deadpool`] pool of `redis` multiplexed connections, created by
//! [`deadpool_redis::Manager`]. It differs from `deadpool_redis::Pool` in one way: giving a
//! connection back costs no round trip. `deadpool_redis` sends `UNWATCH` + `PING` every time a
//! connection is taken (measured: about four extra round trips per started call, ~5,000 a
//! second at 600 calls/s — see docs/BENCHMARKS.md); outdial never uses `WATCH`, and a
//! connection is known to be broken when a command on it fails with an I/O or
//! connection-dropped error, so [`Connection`] remembers that and the pool discards such a
//! connection instead of reusing it. The cost: after Redis restarts, each pooled connection
//! fails one command (the caller's error, retried as any Redis error is) before it is
//! replaced.

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// A pool of Redis connections ([`Manager`]); `get()` hands out a [`Connection`] (use it as
/// `&mut *conn` where a `redis::aio::ConnectionLike` is expected).
pub type Pool = managed::Pool<Manager>;

/// Why no connection could be taken from a [`Pool`] (timeout, connect failure, closed pool).
pub type PoolError = managed::PoolError<RedisError>;

/// Creates connections with [`deadpool_redis::Manager`]; recycles them without a round trip
/// unless they failed (module docs).
pub struct Manager {
    inner: deadpool_redis::Manager,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager connecting to `url` (`redis://host:port/db`).
    ///
    /// Errors: a URL that does not parse.
    pub fn new(url: &str) -> Result<Self, RedisError> {
        Ok(Self {
            inner: deadpool_redis::Manager::new(url)?,
        })
    }
}

/// A pooled multiplexed connection that remembers whether a command on it failed in a way
/// that means the connection itself is gone.
pub struct Connection {
    conn: MultiplexedConnection,
    broken: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// Whether `e` means the connection cannot be used again (as opposed to a command error).
fn breaks_connection(e: &RedisError) -> bool {
    e.is_unrecoverable_error() || e.is_connection_dropped() || e.is_io_error()
}

impl Connection {
    fn note<T>(&mut self, r: &Result<T, RedisError>) {
        if let Err(e) = r
            && breaks_connection(e)
        {
            self.broken = true;
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let r = self.conn.req_packed_command(cmd).await;
            self.note(&r);
            r
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let r = self.conn.req_packed_commands(cmd, offset, count).await;
            self.note(&r);
            r
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

impl managed::Manager for Manager {
    type Type = Connection;
    type Error = RedisError;

    async fn create(&self) -> Result<Connection, RedisError> {
        Ok(Connection {
            conn: managed::Manager::create(&self.inner).await?,
            broken: false,
        })
    }

    async fn recycle(&self, conn: &mut Connection, _: &Metrics) -> RecycleResult<RedisError> {
        if conn.broken {
            Err(RecycleError::message("a command failed on the connection"))
        } else {
            Ok(())
        }
    }
}

/// A pool of at most `size` connections to `url` (`redis://host:port/db`), on the Tokio
/// runtime.
///
/// Errors: a URL that does not parse, or the pool refusing its settings.
pub fn pool(url: &str, size: usize) -> Result<Pool, Box<dyn std::error::Error + Send + Sync>> {
    Ok(Pool::builder(Manager::new(url)?)
        .max_size(size)
        .runtime(deadpool::Runtime::Tokio1)
        .build()?)
}
