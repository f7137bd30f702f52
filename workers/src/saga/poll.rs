//! Webhooks are a hint, not the only channel: the saga also asks the gateway about
//! every payment attempt still `pending` (a booking may have several), and about
//! every refund still `requested` ([`refunds`]), first [`PollSettings::first`] after
//! its start, then on a doubling backoff up to [`PollSettings::max_interval`]. A
//! payment or refund whose webhook was lost (a broker or database outage while the
//! gateway delivered, a provider that gave up) is settled within seconds, not when
//! its hold runs out (or never, for a refund). A process that starts knows no
//! schedule yet: it asks about every payment and refund old enough at once.
//!
//! What the gateway says goes through the saga's `resolve` / `settle_refund`, as a
//! webhook's would: the commands they send have fixed message ids, so a poll racing
//! a webhook is applied once.

use crate::saga::Saga;
use crate::saga::attempt::Attempt;
use contracts::{BookingId, ShowId};
use futures::StreamExt;
use payment_adapter::{IntentStatus, PaymentGateway};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod refunds;

/// Most pending payments (and, apart, unsettled refunds) looked at per round.
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

/// The next poll of each pending payment (by gateway payment id) or unsettled
/// refund (by booking and attempt) this process has asked about.
#[derive(Debug, Default)]
pub struct Schedule {
    next: HashMap<String, (Instant, Duration)>,
}

impl Schedule {
    /// Whether `payment`, `age` old, is due at `now`.
    pub fn is_due(&self, s: &PollSettings, payment: &str, age: Duration, now: Instant) -> bool {
        match self.next.get(payment) {
            Some((at, _)) => now >= *at,
            None => age >= s.first,
        }
    }

    /// `payment` was just asked about and is still open: next time after a pause
    /// twice the last one (the first pause is `first`), at most `max_interval`.
    pub fn polled(&mut self, s: &PollSettings, payment: &str, now: Instant) {
        let pause = self
            .next
            .get(payment)
            .map_or(s.first, |(_, last)| last.saturating_mul(2))
            .min(s.max_interval);
        self.next.insert(payment.to_owned(), (now + pause, pause));
    }

    /// Forgets every payment not in `open` (settled, or gone).
    pub fn keep_only(&mut self, open: &[&str]) {
        self.next.retain(|p, _| open.contains(&p.as_str()));
    }
}

/// Asks the gateway about one pending attempt; `true` when it is still open.
async fn poll_one<G: PaymentGateway>(saga: &Saga<G>, show: ShowId, attempt: &Attempt) -> bool {
    let booking = attempt.booking;
    let Some(payment_id) = attempt.payment_id.as_deref() else {
        return false;
    };
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
    if let Err(e) = saga.resolve(show, attempt, &pi, None).await {
        tracing::warn!(booking_id = %booking, error = %e, "settling a polled payment failed");
        return true;
    }
    false
}

/// booking, attempt, show, payment id, method, amount, currency, age (s).
type PendingRow = (Uuid, i32, Uuid, String, String, i64, String, f64);

/// Polls the pending payments and unsettled refunds of `partitions` until shutdown.
pub async fn run<G: PaymentGateway + 'static>(
    saga: Arc<Saga<G>>,
    partitions: Vec<u16>,
    settings: PollSettings,
    shutdown: CancellationToken,
) {
    let mut schedule = Schedule::default();
    let mut refunds = Schedule::default();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.every) => {}
        }
        refunds::poll(&saga, &partitions, &settings, &mut refunds).await;
        let open: Result<Vec<PendingRow>, _> = sqlx::query_as(
            "select booking_id, attempt, show_id, payment_id, method, amount, currency,
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
        schedule.keep_only(&open.iter().map(|r| r.3.as_str()).collect::<Vec<_>>());
        let now = Instant::now();
        let due: Vec<_> = open
            .into_iter()
            .filter(|r| {
                partitions.contains(&saga.commands.topology().partition_of(ShowId(r.2)))
                    && schedule.is_due(&settings, &r.3, Duration::from_secs_f64(r.7.max(0.0)), now)
            })
            .collect();
        let still_open: Vec<String> = futures::stream::iter(due)
            .map(
                |(booking, number, show, payment_id, method, amount, currency, _)| {
                    let saga = &saga;
                    let attempt = Attempt {
                        booking: BookingId(booking),
                        number,
                        payment_id: Some(payment_id.clone()),
                        method,
                        amount,
                        currency,
                    };
                    async move {
                        poll_one(saga, ShowId(show), &attempt)
                            .await
                            .then_some(payment_id)
                    }
                },
            )
            .buffer_unordered(POLL_CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await;
        for payment in still_open {
            schedule.polled(&settings, &payment, now);
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
        let b = "pi_1";
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
        let (a, b) = ("pi_a", "pi_b");
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
