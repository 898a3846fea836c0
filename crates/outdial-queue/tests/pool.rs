//! The Redis pool on a real Redis: a connection is reused without a check round trip, and
//! one that lost its connection is discarded instead of being handed out again.

use outdial_queue::pool;
use outdial_test_support::TestRedis;

async fn client_id(conn: &mut pool::Connection) -> redis::RedisResult<i64> {
    redis::cmd("CLIENT").arg("ID").query_async(conn).await
}

#[tokio::test]
async fn a_connection_is_reused_after_command_errors_and_replaced_after_it_is_dropped() {
    let redis = TestRedis::new().await;
    let pool = pool::pool(&redis.url, 1).expect("pool");

    let mut conn = pool.get().await.expect("conn");
    let first = client_id(&mut conn).await.expect("client id");
    // A command error (wrong type) says nothing about the connection: it stays pooled.
    let key = format!("{}:pool-test", redis.prefix);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("x")
        .query_async(&mut *conn)
        .await
        .expect("set");
    let wrong: redis::RedisResult<i64> = redis::cmd("LLEN").arg(&key).query_async(&mut *conn).await;
    assert!(wrong.is_err(), "LLEN on a string is a command error");
    drop(conn);
    let mut conn = pool.get().await.expect("conn");
    assert_eq!(
        client_id(&mut conn).await.expect("client id"),
        first,
        "same connection reused"
    );

    // The server closes it: the next command fails, and the pool replaces it.
    let mut admin = redis
        .client
        .get_multiplexed_async_connection()
        .await
        .expect("admin");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(first)
        .query_async(&mut admin)
        .await
        .expect("kill");
    assert_eq!(killed, 1);
    assert!(
        client_id(&mut conn).await.is_err(),
        "the killed connection fails"
    );
    drop(conn);
    let mut conn = pool.get().await.expect("a new connection");
    let second = client_id(&mut conn)
        .await
        .expect("the new connection works");
    assert_ne!(
        second, first,
        "the dropped connection was not handed out again"
    );
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut *conn)
        .await
        .expect("del");
}
