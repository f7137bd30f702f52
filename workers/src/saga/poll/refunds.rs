//! The poll of refunds not settled yet (`refund_status = 'requested'`): a refund the
//! gateway answered is asked about by its recorded id and settled through
//! [`Saga::settle_refund`], as its webhook would be; a refund with no id recorded
//! (the saga stopped between recording `requested` and the gateway's answer, or
//! the request failed until its event was dead-lettered) is requested again under
//! the attempt's refund key, so the gateway answers the refund it already made, or
//! makes it now.

use super::{POLL_BATCH_MAX, POLL_CONCURRENCY, PollSettings, Schedule};
use crate::saga::Saga;
use crate::saga::attempt::Attempt;
use contracts::{BookingId, ShowId};
use futures::StreamExt;
use payment_adapter::PaymentGateway;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// booking, attempt, show, payment id, method, amount, currency, refund id, refund
/// amount, age (s) of the row's last change.
type RefundRow = (
    Uuid,
    i32,
    Uuid,
    String,
    String,
    i64,
    String,
    Option<String>,
    i64,
    f64,
);

/// The schedule's name of one refund: its attempt (a refund id may not exist yet).
fn key(booking: Uuid, attempt: i32) -> String {
    format!("{booking}/{attempt}")
}

/// One round over the unsettled refunds of `partitions`: asks about those due.
pub(super) async fn poll<G: PaymentGateway>(
    saga: &Saga<G>,
    partitions: &[u16],
    settings: &PollSettings,
    schedule: &mut Schedule,
) {
    let open: Result<Vec<RefundRow>, _> = sqlx::query_as(
        "select booking_id, attempt, show_id, payment_id, method, amount, currency,
                refund_id, refund_amount, extract(epoch from now() - updated_at)::float8
           from payments
          where refund_status = 'requested' and payment_id is not null
            and refund_amount is not null
          order by updated_at limit $1",
    )
    .bind(POLL_BATCH_MAX)
    .fetch_all(&saga.pool)
    .await;
    let open = match open {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "unsettled refund poll failed");
            return;
        }
    };
    let keys: Vec<String> = open.iter().map(|r| key(r.0, r.1)).collect();
    schedule.keep_only(&keys.iter().map(String::as_str).collect::<Vec<_>>());
    let now = Instant::now();
    let due: Vec<_> = open
        .into_iter()
        .filter(|r| {
            let age = Duration::from_secs_f64(r.9.max(0.0));
            partitions.contains(&saga.commands.topology().partition_of(ShowId(r.2)))
                && schedule.is_due(settings, &key(r.0, r.1), age, now)
        })
        .collect();
    let polled: Vec<String> = futures::stream::iter(due)
        .map(|row| {
            let (booking, number, show, payment_id, method, amount, currency, refund_id, due, _) =
                row;
            let attempt = Attempt {
                booking: BookingId(booking),
                number,
                payment_id: Some(payment_id),
                method,
                amount,
                currency,
            };
            async move {
                poll_one(saga, ShowId(show), &attempt, refund_id.as_deref(), due).await;
                key(booking, number)
            }
        })
        .buffer_unordered(POLL_CONCURRENCY)
        .collect()
        .await;
    // A refund settled now leaves the open set, and the schedule, next round.
    for refund in polled {
        schedule.polled(settings, &refund, now);
    }
}

/// Asks the gateway about one unsettled refund of `due` minor units.
async fn poll_one<G: PaymentGateway>(
    saga: &Saga<G>,
    show: ShowId,
    attempt: &Attempt,
    refund_id: Option<&str>,
    due: i64,
) {
    let result = match refund_id {
        Some(id) => saga.settle_refund(show, attempt, id).await,
        None => {
            saga.request_refund(show, attempt, due, &attempt.refund_key())
                .await
        }
    };
    match result {
        Ok(()) => metrics::counter!("saga_refund_polls_total").increment(1),
        Err(e) => {
            tracing::warn!(booking_id = %attempt.booking, attempt = attempt.number, error = %e, "polling an unsettled refund failed");
        }
    }
}
