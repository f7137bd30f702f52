//! What the database says while it goes away is "unavailable" (a 503 and a retry),
//! not a failed statement: seen on the real server by ending a session the way a
//! shutdown does (`pg_terminate_backend`, SQLSTATE 57P01 `terminating connection due
//! to administrator command`, the error a soak saw answered as a 500 during a
//! PostgreSQL restart).

use sqlx::{Connection, PgConnection};

fn url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/booking_test".into())
}

#[tokio::test]
async fn a_session_ended_by_the_server_is_unavailable_and_a_bad_statement_is_not() {
    platform::db::ensure_database(&url())
        .await
        .expect("the database");
    let mut victim = PgConnection::connect(&url()).await.expect("connect");
    let mut admin = PgConnection::connect(&url()).await.expect("connect");
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut victim)
        .await
        .unwrap();
    let ended: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(ended);
    let err = sqlx::query("select 1")
        .execute(&mut victim)
        .await
        .expect_err("the session is gone");
    assert!(platform::db::is_unavailable(&err), "{err:?}");

    let bad = sqlx::query("select no_such_column from pg_class")
        .execute(&mut admin)
        .await
        .expect_err("a wrong statement");
    assert!(!platform::db::is_unavailable(&bad), "{bad:?}");
}

/// A load balancer in front of PostgreSQL with no server behind it (HAProxy during a
/// failover) accepts the connection and closes it at once. With TLS the client's first
/// read is of the answer to its `SSLRequest`, and sqlx reports the closed connection
/// as a protocol error about `0x00` (seen as 500s in the failover test): unavailable.
#[tokio::test]
async fn a_connection_closed_before_the_tls_answer_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            // Reads what the client sends first (the SSLRequest, or the startup
            // message without TLS), then closes cleanly, answering nothing.
            let mut first = [0u8; 8];
            drop(socket.read_exact(&mut first).await);
            drop(socket.shutdown().await);
        }
    });
    for mode in ["require", "prefer", "disable"] {
        let e = PgConnection::connect(&format!(
            "postgres://postgres@127.0.0.1:{port}/x?sslmode={mode}"
        ))
        .await
        .expect_err("nothing to connect to");
        assert!(
            platform::db::is_unavailable(&e),
            "sslmode={mode}: {e:?} is not unavailable"
        );
    }
}
