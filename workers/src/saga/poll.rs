//! Webhooks are a hint, not the only channel: the saga also asks the gateway about
//! every payment still `pending`, first [`PollSettings::first`] after its start, then
//! on a doubling backoff up to [`PollSettings::max_interval`]. A payment whose webhook
//! was lost (a broker or database outage while the gateway delivered, a provider
//! that gave up) is settled within seconds, not when its hold runs out. A process
//! that starts knows no schedule yet: it asks about every payment old enough at once.
//!
//! What the gateway says goes through the saga's `resolve`, as a webhook's would:
//! the commands it sends have fixed message ids, so a poll racing a webhook is
//! applied once.

use crate::saga::Saga;
use contracts::{BookingId, ShowId};
use futures::StreamExt;
use payment_adapter::{IntentStatus, PaymentGateway};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most pending payments looked at per round.
const POLL_BATCH_MAX: i64 = 500;
/// Gateway calls in flight at once.
const POLL_CONCURRENCY: usize = 16;

/// When to ask the gateway.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    /// How often the loop looks for due payments.
    pub every: Duration,
    /// Age of a payment at its first poll.
    pub first: Duration,
    /// Longest pause between two polls of one payment.
    pub max_interval: Duration,
}

/// The next poll of each pending payment this process has asked about.
#[derive(Debug, Default)]
pub struct Schedule {
    next: HashMap<Uuid, (Instant, Duration)>,
}

impl Schedule {
    /// Whether `booking`'s payment, `age` old, is due at `now`.
    pub fn is_due(&self, s: &PollSettings, booking: Uuid, age: Duration, now: Instant) -> bool {
        match self.next.get(&booking) {
            Some((at, _)) => now >= *at,
            None => age >= s.first,
        }
    }

    /// `booking` was just asked about and is still open: next time after a pause
    /// twice the last one (the first pause is `first`), at most `max_interval`.
    pub fn polled(&mut self, s: &PollSettings, booking: Uuid, now: Instant) {
        let pause = self
            .next
            .get(&booking)
            .map_or(s.first, |(_, last)| last.saturating_mul(2))
            .min(s.max_interval);
        self.next.insert(booking, (now + pause, pause));
    }

    /// Forgets every payment not in `open` (settled, or gone).
    pub fn keep_only(&mut self, open: &[Uuid]) {
        self.next.retain(|b, _| open.contains(b));
    }
}

/// Asks the gateway about the payment of one booking; `true` when it is still open.
async fn poll_one<G: PaymentGateway>(
    saga: &Saga<G>,
    show: ShowId,
    booking: BookingId,
    payment_id: &str,
) -> bool {
    let pi = match saga.gateway.get_payment(payment_id).await {
        Ok(pi) => pi,
        Err(e) => {
            tracing::warn!(booking_id = %booking, error = %e, "polling a pending payment failed");
            return true;
        }
    };
    if pi.status == IntentStatus::Processing {
        return true;
    }
    metrics::counter!("saga_payment_polls_settled_total").increment(1);
    if let Err(e) = saga.resolve(show, booking, &pi, None).await {
        tracing::warn!(booking_id = %booking, error = %e, "settling a polled payment failed");
        return true;
    }
    false
}

/// Polls the pending payments of `partitions` until shutdown.
pub async fn run<G: PaymentGateway + 'static>(
    saga: Arc<Saga<G>>,
    partitions: Vec<u16>,
    settings: PollSettings,
    shutdown: CancellationToken,
) {
    let mut schedule = Schedule::default();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.every) => {}
        }
        let open: Result<Vec<(Uuid, Uuid, String, f64)>, _> = sqlx::query_as(
            "select booking_id, show_id, payment_id,
                    extract(epoch from now() - created_at)::float8
               from payments
              where status = 'pending' and payment_id is not null
              order by created_at limit $1",
        )
        .bind(POLL_BATCH_MAX)
        .fetch_all(&saga.pool)
        .await;
        let open = match open {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "pending payment poll failed");
                continue;
            }
        };
        schedule.keep_only(&open.iter().map(|r| r.0).collect::<Vec<_>>());
        let now = Instant::now();
        let due: Vec<_> = open
            .into_iter()
            .filter(|(booking, show, _, age)| {
                partitions.contains(&saga.commands.topology().partition_of(ShowId(*show)))
                    && schedule.is_due(
                        &settings,
                        *booking,
                        Duration::from_secs_f64(age.max(0.0)),
                        now,
                    )
            })
            .collect();
        let still_open: Vec<Uuid> = futures::stream::iter(due)
            .map(|(booking, show, payment_id, _)| {
                let saga = &saga;
                async move {
                    poll_one(saga, ShowId(show), BookingId(booking), &payment_id)
                        .await
                        .then_some(booking)
                }
            })
            .buffer_unordered(POLL_CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await;
        for booking in still_open {
            schedule.polled(&settings, booking, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PollSettings {
        PollSettings {
            every: Duration::from_millis(500),
            first: Duration::from_secs(2),
            max_interval: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_payment_is_first_polled_at_the_first_age_then_on_a_doubling_capped_backoff() {
        let s = settings();
        let b = Uuid::from_u128(1);
        let t0 = Instant::now();
        let mut sched = Schedule::default();
        assert!(!sched.is_due(&s, b, Duration::from_secs(1), t0));
        assert!(sched.is_due(&s, b, Duration::from_secs(2), t0));
        let mut at = t0;
        for pause in [2, 4, 8, 10, 10] {
            sched.polled(&s, b, at);
            let next = at + Duration::from_secs(pause);
            assert!(!sched.is_due(&s, b, Duration::ZERO, next - Duration::from_millis(1)));
            assert!(sched.is_due(&s, b, Duration::ZERO, next));
            at = next;
        }
    }

    #[test]
    fn a_settled_payment_is_forgotten_and_a_new_process_polls_old_ones_at_once() {
        let s = settings();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let now = Instant::now();
        let mut sched = Schedule::default();
        sched.polled(&s, a, now);
        sched.polled(&s, b, now);
        sched.keep_only(&[b]);
        // a is no longer scheduled: its age alone decides, as after a restart.
        assert!(sched.is_due(&s, a, Duration::from_secs(600), now));
        assert!(!sched.is_due(&s, b, Duration::from_secs(600), now));
    }
}
