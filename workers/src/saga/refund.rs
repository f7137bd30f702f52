//! Refunds: of a cancelled booking's payment, of a late payment that lost its
//! seats, and of a second capture of a booking already paid. Each refunds one
//! attempt (the one the event names by its payment id) with that attempt's own
//! idempotency key; its completion goes back to the partition with the payment
//! id, so only the refund the booking waits for ends it `refunded`.

use super::attempt::{self, Attempt};
use super::{Saga, gateway_error, payments_dead_letter};
use contracts::{BookingId, Command, MessageId, ShowId};
use payment_adapter::{PaymentGateway, RefundStatus};
use platform::amqp::{Failure, Parcel};

impl<G: PaymentGateway> Saga<G> {
    /// Refunds `amount` of the booking's payment `payment_id`.
    pub(super) async fn refund(
        &self,
        show: ShowId,
        booking: BookingId,
        payment_id: &str,
        amount: i64,
    ) -> Result<(), Failure> {
        let Some(attempt) = attempt::by_payment(&self.pool, booking, payment_id).await? else {
            return Err(Failure::Abort(format!(
                "booking {booking} has no payment {payment_id:?} to refund"
            )));
        };
        sqlx::query(
            "update payments set refund_status = coalesce(refund_status, 'requested'),
                    refund_amount = $3, updated_at = now()
              where booking_id = $1 and attempt = $2",
        )
        .bind(booking.0)
        .bind(attempt.number)
        .bind(amount)
        .execute(&self.pool)
        .await?;
        if amount <= 0 {
            return self.refund_done(show, &attempt, "no_refund_due", 0).await;
        }
        match self
            .gateway
            .refund(payment_id, amount, &attempt.refund_key())
            .await
        {
            Ok(r) => {
                sqlx::query(
                    "update payments set refund_id = $3, updated_at = now()
                      where booking_id = $1 and attempt = $2",
                )
                .bind(booking.0)
                .bind(attempt.number)
                .bind(&r.id)
                .execute(&self.pool)
                .await?;
                match r.status {
                    RefundStatus::Pending => Ok(()),
                    RefundStatus::Succeeded => {
                        self.refund_done(show, &attempt, &r.id, r.amount).await
                    }
                    RefundStatus::Failed => {
                        let why = r.failure_reason.unwrap_or_else(|| "refund_failed".into());
                        self.refund_failed(&attempt, &why).await
                    }
                }
            }
            Err(e) if !e.is_retryable() => self.refund_failed(&attempt, &e.to_string()).await,
            Err(e) => Err(gateway_error(e)),
        }
    }

    pub(super) async fn refund_done(
        &self,
        show: ShowId,
        attempt: &Attempt,
        refund_id: &str,
        amount: i64,
    ) -> Result<(), Failure> {
        let booking = attempt.booking;
        sqlx::query(
            "update payments set refund_status = 'succeeded', refund_id = $3, updated_at = now()
              where booking_id = $1 and attempt = $2",
        )
        .bind(booking.0)
        .bind(attempt.number)
        .bind(refund_id)
        .execute(&self.pool)
        .await?;
        metrics::counter!("saga_refunds_total", "status" => "succeeded").increment(1);
        self.send(
            show,
            booking,
            &attempt.step("refund-completed"),
            Command::RefundCompleted {
                booking_id: booking,
                refund_id: refund_id.to_owned(),
                amount,
                payment_id: attempt.payment_id.clone(),
            },
        )
        .await
    }

    pub(super) async fn refund_failed(&self, attempt: &Attempt, why: &str) -> Result<(), Failure> {
        let booking = attempt.booking;
        sqlx::query(
            "update payments set refund_status = 'failed', failure_reason = $3, updated_at = now()
              where booking_id = $1 and attempt = $2",
        )
        .bind(booking.0)
        .bind(attempt.number)
        .bind(why)
        .execute(&self.pool)
        .await?;
        metrics::counter!("saga_refunds_total", "status" => "failed").increment(1);
        // Parked for operators in the payments dead-letter queue (no queue feeds it
        // back by itself: `x-source-queue` is the saga queue, for a replay).
        let body = serde_json::json!({"booking_id": booking, "attempt": attempt.number,
            "problem": "refund_failed", "reason": why})
        .to_string();
        let topo = self.commands.topology();
        platform::amqp::dead_letter(
            self.commands.publisher(),
            &payments_dead_letter(&topo.payments_dlx(), topo.saga_queue()),
            Parcel::new(
                MessageId::for_booking(booking, &attempt.step("refund-failed")).to_string(),
                body.as_bytes(),
            ),
            &format!("refund failed: {why}"),
        )
        .await?;
        Ok(())
    }
}
