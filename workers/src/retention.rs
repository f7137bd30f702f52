//! Retention: the bookkeeping tables that only deduplicate or authenticate grow with
//! every message, webhook and login; this sweep keeps them bounded.
//!
//! - `processed_messages` (the sequencer's inbox): a redelivery comes within
//!   minutes, a dead-letter replay within days; after `retention_days` the inbox
//!   forgets. A later replay is still safe: the sequencer decides a known booking
//!   once and its payment and cancellation steps are no-ops when already done.
//! - `payment_webhooks` (deduplication of gateway deliveries): gateways retry for
//!   hours, never for weeks.
//! - `refresh_tokens`: expired ones can never be presented again.
//! - `accepted_bookings` (ingress's record of every 202): needed only until the
//!   sequencer has written the booking; a row goes a minute after its booking was
//!   decided (a `GET` that missed the booking row has read it long before), and
//!   any row after `retention_days` (a command the sequencer never decided, e.g.
//!   dead-lettered, is in the dead-letter queue for operators by then).
//!
//! Deletes go in bounded chunks, so no sweep holds locks for long; several workers
//! processes sweeping at once only race to delete the same rows.

use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows deleted per statement.
const CHUNK: i64 = 10_000;

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub processed_messages: u64,
    pub payment_webhooks: u64,
    pub refresh_tokens: u64,
    pub accepted_bookings: u64,
}

/// Deletes, in chunks, the rows of `table` whose `column` is older than `days` days.
async fn delete_older(pool: &PgPool, table: &str, column: &str, days: u32) -> sqlx::Result<u64> {
    let sql = format!(
        "delete from {table} where ctid in (
           select ctid from {table} where {column} < now() - make_interval(days => $1) limit $2)"
    );
    let mut total = 0;
    loop {
        let n = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(i32::try_from(days).unwrap_or(i32::MAX))
            .bind(CHUNK)
            .execute(pool)
            .await?
            .rows_affected();
        total += n;
        if n < CHUNK as u64 {
            return Ok(total);
        }
    }
}

/// `accepted_bookings` rows whose booking was decided over a minute ago, in chunks.
async fn delete_decided_acceptances(pool: &PgPool) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "delete from accepted_bookings where booking_id in (
               select a.booking_id from accepted_bookings a
                 join bookings b on b.id = a.booking_id
                where b.created_at < now() - interval '1 minute'
                limit $1)",
        )
        .bind(CHUNK)
        .execute(pool)
        .await?
        .rows_affected();
        total += n;
        if n < CHUNK as u64 {
            return Ok(total);
        }
    }
}

/// One sweep: inbox and webhook rows older than `days`, refresh tokens expired
/// more than a day ago, records of acceptance once decided (or older than `days`).
pub async fn sweep(pool: &PgPool, days: u32) -> sqlx::Result<Swept> {
    Ok(Swept {
        processed_messages: delete_older(pool, "processed_messages", "processed_at", days).await?,
        payment_webhooks: delete_older(pool, "payment_webhooks", "received_at", days).await?,
        refresh_tokens: delete_older(pool, "refresh_tokens", "expires_at", 1).await?,
        accepted_bookings: delete_decided_acceptances(pool).await?
            + delete_older(pool, "accepted_bookings", "accepted_at", days).await?,
    })
}

/// Sweeps every `every` until `stop`.
pub async fn run(pool: PgPool, days: u32, every: Duration, stop: CancellationToken) {
    let mut ticks = platform::every(every, &stop);
    // The first sweep runs at startup, not one period later.
    loop {
        match sweep(&pool, days).await {
            Ok(s) if s != Swept::default() => tracing::info!(?s, "retention sweep"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; next time"),
        }
        if !ticks.tick().await {
            return;
        }
    }
}
