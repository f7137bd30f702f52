//! Hold expiry: holds whose time ran out become `ExpireHold` commands on their
//! show's partition queue, so expiry is ordered with payments and everything else.
//! The message id is fixed per booking, so sweeping twice (or from two processes)
//! is harmless: the sequencer's inbox applies it once.

use contracts::{BookingId, Command, CommandEnvelope, MessageId, ShowId};
use platform::commands::CommandBus;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most holds expired per sweep.
const SWEEP_BATCH_MAX: i64 = 2000;
/// A booking already sent an `ExpireHold` is sent again only after this long.
const RESEND_AFTER: Duration = Duration::from_secs(30);

/// One sweep: publishes `ExpireHold` for ran-out holds of `partitions`; returns how many.
pub async fn sweep_once(
    pool: &PgPool,
    commands: &CommandBus,
    partitions: &[u16],
    sent: &mut HashMap<Uuid, Instant>,
) -> anyhow::Result<usize> {
    let now = platform::now_millis();
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select id, show_id from bookings
          where status = 'held' and hold_expires_at <= to_timestamp($1 / 1000.0)
          order by hold_expires_at limit $2",
    )
    .bind(now.0)
    .bind(SWEEP_BATCH_MAX)
    .fetch_all(pool)
    .await?;
    let at = Instant::now();
    sent.retain(|_, t| at.duration_since(*t) < RESEND_AFTER);
    let topo = commands.topology();
    let mut n = 0;
    for (booking, show) in due {
        let show = ShowId(show);
        let p = topo.partition_of(show);
        if !partitions.contains(&p) || sent.contains_key(&booking) {
            continue;
        }
        let booking_id = BookingId(booking);
        let env = CommandEnvelope::new(
            MessageId::for_booking(booking_id, "expire"),
            show,
            now,
            Command::ExpireHold { booking_id },
        );
        commands.send(&env).await?;
        sent.insert(booking, at);
        n += 1;
    }
    if n > 0 {
        tracing::info!(count = n, "expire commands published");
        metrics::counter!("holds_expiry_requested_total").increment(n as u64);
    }
    Ok(n)
}

/// Sweeps every `every` until shutdown.
pub async fn run(
    pool: PgPool,
    commands: CommandBus,
    partitions: Vec<u16>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut sent = HashMap::new();
    let mut ticks = platform::every(every, &shutdown);
    while ticks.tick().await {
        if let Err(e) = sweep_once(&pool, &commands, &partitions, &mut sent).await {
            tracing::warn!(error = %e, "hold expiry sweep failed");
        }
    }
}
