//! The store under a Postgres outage: failures are classified as outages, and connections
//! killed by the server are replaced before they fail more than one statement.

use outdial_store::{Store, StoreError};
use outdial_test_support::TestDb;

/// Statements in a row that each need their own pooled connection.
const CONNECTIONS: usize = 4;

#[tokio::test]
async fn an_unreachable_postgres_is_an_outage_not_a_bad_request() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let err = Store::connect("postgres://outdial@127.0.0.1:1/none?connect_timeout=2", 1)
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.is_outage(), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    let not_found = StoreError::NotFound {
        what: "campaign",
        id: "7".into(),
    };
    assert!(!not_found.is_outage());
}

#[tokio::test]
async fn connections_killed_by_the_server_fail_one_statement_then_are_replaced() {
    let db = TestDb::new(&outdial_store::MIGRATOR).await;
    let app = "outdial-outage-test";
    let url = format!("{}?application_name={app}", db.url);
    let store = Store::connect(&url, CONNECTIONS as u32)
        .await
        .expect("connect");
    // Open every connection of the pool: hold them all at once.
    let mut held = Vec::new();
    for _ in 0..CONNECTIONS {
        held.push(store.acquire().await.expect("acquire"));
    }
    drop(held);
    // What a Postgres restart does to them: every backend terminated.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(app)
    .fetch_all(&db.pool)
    .await
    .expect("terminate");
    assert_eq!(killed.len(), CONNECTIONS, "{killed:?}");

    let mut failures = Vec::new();
    for _ in 0..2 * CONNECTIONS {
        let r: Result<i32, StoreError> = sqlx::query_scalar("SELECT 1")
            .fetch_one(store.pool())
            .await
            .map_err(StoreError::from);
        if let Err(e) = r {
            assert!(e.is_outage(), "a killed connection is an outage: {e:?}");
            failures.push(e.to_string());
        }
    }
    // The first dead connection fails its statement; after that every acquire pings and
    // replaces the dead ones.
    assert_eq!(failures.len(), 1, "{failures:?}");
    store.pool().close().await;
    db.cleanup().await;
}
