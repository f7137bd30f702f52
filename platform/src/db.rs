//! PostgreSQL: the pool, creating the database, running the migrations.

use crate::settings::DatabaseSettings;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// The migrations of `migrations/`, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A pool on the configured database (lazy: connects on first use).
pub fn pool(s: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    let opts = PgConnectOptions::from_str(&s.url)?;
    Ok(PgPoolOptions::new()
        .max_connections(s.max_connections)
        .acquire_timeout(Duration::from_millis(s.acquire_timeout_ms))
        .connect_lazy_with(opts))
}

/// Creates the database named in `url` if it does not exist yet.
pub async fn ensure_database(url: &str) -> Result<(), sqlx::Error> {
    let opts = PgConnectOptions::from_str(url)?;
    let name = opts.get_database().unwrap_or("postgres").to_owned();
    let mut admin = opts.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it.
        let sql = format!("create database \"{}\"", name.replace('"', "\"\""));
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
        {
            // Lost a race with another creator: fine.
            if !matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42P04")) {
                return Err(e);
            }
        }
    }
    admin.close().await?;
    Ok(())
}

/// Creates the database if needed and applies every pending migration.
pub async fn migrate(url: &str) -> Result<(), anyhow::Error> {
    ensure_database(url).await?;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Waits (bounded backoff) until PostgreSQL answers.
pub async fn wait_ready(pool: &PgPool, max_wait: Duration) -> Result<(), sqlx::Error> {
    use backon::Retryable;
    (|| async { sqlx::query("select 1").execute(pool).await.map(|_| ()) })
        .retry(crate::startup_backoff(max_wait))
        .notify(|e, d| tracing::warn!(error = %e, retry_in = ?d, "postgres not ready"))
        .await
}

/// A text column parsed into a `contracts` state name (`BookingStatus`,
/// `ShowStatus`, ...) at the row boundary: a value the type does not know is a
/// decode error, never a string compared further in.
pub fn parse_text<T: FromStr<Err = String>>(s: &str) -> Result<T, sqlx::Error> {
    s.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))
}

/// Whether `e` says the database is unreachable for the moment (a restart, a
/// failover, a full pool) rather than that the statement is wrong: what a caller
/// answers with `503` and a retry, never `500`. Besides the pool's and the socket's
/// own errors, the server's SQLSTATE classes 08 (connection exception) and 57P
/// (operator intervention: `terminating connection due to administrator command`
/// while it shuts down, `the database system is starting up`), and 53300 (too many
/// connections). With TLS, a connection that could not be set up is unavailable
/// too: a failed handshake, or a server (or a load balancer with no server behind
/// it, as during a failover) that closed the connection before answering the
/// `SSLRequest`, which sqlx reports as a protocol error about the byte `0x00` it
/// was left with.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(m) => m.starts_with("unexpected response from SSLRequest: 0x00"),
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
        _ => false,
    }
}
