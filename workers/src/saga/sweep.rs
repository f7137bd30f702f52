//! The sweep of payments still pending when their hold ran out: the gateway decides.

use super::Saga;
use contracts::{BookingId, ShowId};
use payment_adapter::PaymentGateway;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Resolves pending payments whose hold ran out, every `every`.
pub async fn run_pending_sweep<G: PaymentGateway + 'static>(
    saga: Arc<Saga<G>>,
    partitions: Vec<u16>,
    grace: Duration,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut recent: HashMap<Uuid, Instant> = HashMap::new();
    let mut ticks = platform::every(every, &shutdown);
    while ticks.tick().await {
        sweep_pending(&saga, &partitions, grace, &mut recent).await;
    }
}

/// One sweep of pending payments whose hold ran out `grace` ago, on `partitions`.
async fn sweep_pending<G: PaymentGateway>(
    saga: &Saga<G>,
    partitions: &[u16],
    grace: Duration,
    recent: &mut HashMap<Uuid, Instant>,
) {
    /// Most pending payments resolved per sweep.
    const PENDING_SWEEP_MAX: i64 = 500;
    /// A booking resolved once is looked at again only after this long.
    const AGAIN_AFTER: Duration = Duration::from_secs(10);
    let cutoff = platform::now_millis().0 - i64::try_from(grace.as_millis()).unwrap_or(0);
    let due: Result<Vec<(Uuid, Uuid)>, _> = sqlx::query_as(
        "select id, show_id from bookings
          where status = 'payment_pending' and hold_expires_at <= to_timestamp($1 / 1000.0)
          order by hold_expires_at limit $2",
    )
    .bind(cutoff)
    .bind(PENDING_SWEEP_MAX)
    .fetch_all(&saga.pool)
    .await;
    let now = Instant::now();
    recent.retain(|_, t| now.duration_since(*t) < AGAIN_AFTER);
    match due {
        Ok(due) => {
            for (booking, show) in due {
                let show = ShowId(show);
                if !partitions.contains(&saga.commands.topology().partition_of(show))
                    || recent.contains_key(&booking)
                {
                    continue;
                }
                recent.insert(booking, now);
                if let Err(e) = saga.resolve_expired(show, BookingId(booking)).await {
                    tracing::warn!(booking_id = %booking, error = %e, "resolving an expired pending payment failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "pending payment sweep failed"),
    }
}
