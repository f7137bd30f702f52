//! Operators and a failed refund: a retry replayed from the payments dead-letter
//! queue, and the record of a refund made by hand. Both end, like any refund, in
//! `refund_done`: `RefundCompleted` into the booking's partition, `refunded`.

use super::Saga;
use super::attempt::{self, Attempt};
use contracts::{BookingId, RefundRecord, RefundRetry, ShowId};
use payment_adapter::PaymentGateway;
use platform::amqp::Failure;
use uuid::Uuid;

/// The gateway idempotency key of the `n`-th retry of `attempt`'s refund (n ≥ 1):
/// fixed by the retry, so replaying one parked message twice refunds once, and new
/// for each retry, so the gateway does not answer with the refund that failed.
pub fn retry_key(attempt: &Attempt, n: u32) -> String {
    format!("{}-r{n}", attempt.refund_key())
}

/// show, payment id, refund amount, refund status.
type RefundRow = (Uuid, Option<String>, Option<i64>, Option<String>);

/// The attempt whose refund is about, its show, refund amount and refund status.
struct RefundOf {
    show: ShowId,
    attempt: Attempt,
    amount: i64,
    status: Option<String>,
}

impl<G: PaymentGateway> Saga<G> {
    async fn refund_of(&self, booking: BookingId, number: i32) -> Result<RefundOf, Failure> {
        let row: Option<RefundRow> = sqlx::query_as(
            "select show_id, payment_id, refund_amount, refund_status from payments
              where booking_id = $1 and attempt = $2",
        )
        .bind(booking.0)
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        let missing = || {
            Failure::Abort(format!(
                "booking {booking} has no refunded payment attempt {number}"
            ))
        };
        let (show, payment_id, amount, status) = row.ok_or_else(missing)?;
        let (Some(payment_id), Some(amount)) = (payment_id, amount) else {
            return Err(missing());
        };
        let attempt = attempt::by_payment(&self.pool, booking, &payment_id)
            .await?
            .ok_or_else(missing)?;
        Ok(RefundOf {
            show: ShowId(show),
            attempt,
            amount,
            status,
        })
    }

    /// A failed refund replayed from the dead-letter queue: asks the gateway again,
    /// as retry `retries + 1`. Nothing to do once the refund succeeded.
    pub async fn on_refund_retry(&self, r: &RefundRetry) -> Result<(), Failure> {
        let of = self.refund_of(r.booking_id, r.attempt).await?;
        match of.status.as_deref() {
            Some("succeeded") => {
                tracing::info!(booking_id = %r.booking_id, "refund retry: already refunded");
                return Ok(());
            }
            // Failed, or requested by a retry that did not finish: (re)try.
            Some("failed" | "requested") => {}
            other => {
                return Err(Failure::Abort(format!(
                    "booking {} attempt {}: no refund to retry (refund status {other:?})",
                    r.booking_id, r.attempt
                )));
            }
        }
        let n = r.retries + 1;
        sqlx::query(
            "update payments set refund_status = 'requested',
                    refund_retries = greatest(refund_retries, $3), updated_at = now()
              where booking_id = $1 and attempt = $2 and refund_status <> 'succeeded'",
        )
        .bind(r.booking_id.0)
        .bind(r.attempt)
        .bind(i32::try_from(n).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await?;
        metrics::counter!("saga_refund_retries_total").increment(1);
        tracing::info!(booking_id = %r.booking_id, retry = n, "refund retried from the dead-letter queue");
        self.request_refund(of.show, &of.attempt, of.amount, &retry_key(&of.attempt, n))
            .await
    }

    /// An operator's record of a refund made by hand: the failed refund ends
    /// `succeeded` with the operator's reference, and the booking `refunded`.
    pub async fn on_refund_record(&self, r: &RefundRecord) -> Result<(), Failure> {
        let of = self.refund_of(r.booking_id, r.attempt).await?;
        match of.status.as_deref() {
            Some("failed") => {}
            // A redelivery of a record already applied.
            Some("succeeded") => return Ok(()),
            other => {
                return Err(Failure::Abort(format!(
                    "booking {} attempt {}: only a failed refund can be recorded by hand (refund status {other:?})",
                    r.booking_id, r.attempt
                )));
            }
        }
        sqlx::query(
            "update payments set refund_recorded_by = $3, refund_note = $4, updated_at = now()
              where booking_id = $1 and attempt = $2",
        )
        .bind(r.booking_id.0)
        .bind(r.attempt)
        .bind(&r.recorded_by)
        .bind(&r.note)
        .execute(&self.pool)
        .await?;
        tracing::warn!(booking_id = %r.booking_id, refund_id = %r.refund_id, by = %r.recorded_by, "refund made by hand recorded");
        self.refund_done(of.show, &of.attempt, &r.refund_id, of.amount)
            .await
    }
}
