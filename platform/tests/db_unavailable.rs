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
