//! Refunds: of a cancelled booking's payment, of a late payment that lost its
//! seats, and of a second capture of a booking already paid. Each refunds one
//! attempt (the one the event names by its payment id) with that attempt's own
//! idempotency key; its completion goes back to the partition with the payment
//! id, so only the refund the booking waits for ends it `refunded`.
//!
//! A refund is settled by what the gateway says about it ([`Saga::settle_refund`]),
//! whoever asks: a `refund.succeeded` / `refund.failed` webhook (a hint naming the
//! refund) or the saga's own poll of refunds still `requested` ([`super::poll`]). Only
//! the refund the booking asked for counts ([`refund_match`](super::refund_match)).

use super::attempt::{self, Attempt};
use super::refund_match::{self, Requested};
use super::{Saga, gateway_error, payments_dead_letter};
use contracts::saga::REFUND_FAILED_PROBLEM;
use contracts::topology::REFUND_RETRY_TYPE;
use contracts::{BookingId, Command, MessageId, RefundRetry, ShowId};
use payment_adapter::{GatewayError, PaymentGateway, RefundStatus};
use platform::amqp::{Failure, Parcel};

/// What a gateway call about a refund to verify gave: the answer, or why there is
/// nothing to act on (the gateway refused to answer: the id is unknown).
enum Fetched<T> {
    Got(T),
    Unknown(String),
}

fn fetched<T>(r: Result<T, GatewayError>) -> Result<Fetched<T>, Failure> {
    match r {
        Ok(v) => Ok(Fetched::Got(v)),
        Err(e) if !e.is_retryable() => Ok(Fetched::Unknown(e.to_string())),
        Err(e) => Err(gateway_error(e)),
    }
}

/// A refund that is not the booking's own: ignored, logged and counted.
fn mismatch(booking: BookingId, refund_id: &str, why: &str) -> Result<(), Failure> {
    metrics::counter!("saga_refund_mismatches_total").increment(1);
    tracing::error!(booking_id = %booking, refund_id, why, "refund does not belong to the booking; ignored");
    Ok(())
}

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
        self.request_refund(show, &attempt, amount, &attempt.refund_key())
            .await
    }

    /// Asks the gateway to refund `amount` of the attempt's payment under
    /// idempotency `key`: the attempt's refund key, so that a repeat (a redelivered
    /// event, or the poll of a refund recorded `requested` whose request never
    /// reached the gateway or whose answer was lost) gets the same refund, never a
    /// second one; or a retry's own key (see `refund_ops`).
    pub(super) async fn request_refund(
        &self,
        show: ShowId,
        attempt: &Attempt,
        amount: i64,
        key: &str,
    ) -> Result<(), Failure> {
        if amount <= 0 {
            return self.refund_done(show, attempt, "no_refund_due", 0).await;
        }
        let booking = attempt.booking;
        let Some(payment_id) = attempt.payment_id.as_deref() else {
            return Err(Failure::Abort(format!(
                "attempt {} of booking {booking} has no payment to refund",
                attempt.number
            )));
        };
        match self.gateway.refund(payment_id, amount, key).await {
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
                        self.refund_done(show, attempt, &r.id, r.amount).await
                    }
                    RefundStatus::Failed => {
                        let why = r.failure_reason.unwrap_or_else(|| "refund_failed".into());
                        self.refund_failed(attempt, &why).await
                    }
                }
            }
            Err(e) if !e.is_retryable() => self.refund_failed(attempt, &e.to_string()).await,
            Err(e) => Err(gateway_error(e)),
        }
    }

    /// Settles the attempt's refund by what the gateway says about `refund_id`, when
    /// it is the refund the saga asked for (else nothing changes). A webhook only
    /// names the refund; a poll names the one recorded. Every command sent has a
    /// fixed message id, so a webhook racing a poll is applied once.
    pub(super) async fn settle_refund(
        &self,
        show: ShowId,
        attempt: &Attempt,
        refund_id: &str,
    ) -> Result<(), Failure> {
        let booking = attempt.booking;
        if refund_id.is_empty() {
            return mismatch(booking, refund_id, "no refund named");
        }
        let row: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
            "select refund_id, refund_amount from payments
              where booking_id = $1 and attempt = $2 and refund_status is not null",
        )
        .bind(booking.0)
        .bind(attempt.number)
        .fetch_optional(&self.pool)
        .await?;
        let Some((recorded, Some(amount))) = row else {
            return mismatch(
                booking,
                refund_id,
                "no refund of this payment was asked for",
            );
        };
        let Some(payment_id) = attempt.payment_id.as_deref() else {
            return mismatch(booking, refund_id, "the attempt has no payment");
        };
        let refund = match fetched(self.gateway.get_refund(refund_id).await)? {
            Fetched::Got(r) => r,
            Fetched::Unknown(why) => return mismatch(booking, refund_id, &why),
        };
        if refund.payment_intent != payment_id {
            let why = format!("refund of payment {}", refund.payment_intent);
            return mismatch(booking, refund_id, &why);
        }
        let pi = match fetched(self.gateway.get_payment(payment_id).await)? {
            Fetched::Got(pi) => pi,
            Fetched::Unknown(why) => return mismatch(booking, refund_id, &why),
        };
        let requested = Requested {
            payment: attempt.recorded(),
            refund_id: recorded,
            amount,
        };
        if let Err(why) = refund_match::check(booking, &requested, &refund, &pi) {
            return mismatch(booking, refund_id, &why);
        }
        match refund.status {
            RefundStatus::Pending => Ok(()),
            RefundStatus::Succeeded => {
                self.refund_done(show, attempt, &refund.id, refund.amount)
                    .await
            }
            RefundStatus::Failed => {
                let why = refund
                    .failure_reason
                    .unwrap_or_else(|| "refund_failed".into());
                self.refund_failed(attempt, &why).await
            }
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
        // The command first, then the row: the poll asks about `requested` refunds
        // only, so a row marked succeeded whose `RefundCompleted` was never sent (the
        // broker away at that moment) left the booking `cancelled` for good, the money
        // returned but the booking never `refunded` (the soak saw it). A crash between
        // the two sends the command again on the next poll; its message id is fixed,
        // so the sequencer applies it once.
        if crate::runner::Faults::take(&self.faults.saga_send_fail) {
            return Err(Failure::Retry("rabbitmq: unreachable (injected)".into()));
        }
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
        .await?;
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
        Ok(())
    }

    pub(super) async fn refund_failed(&self, attempt: &Attempt, why: &str) -> Result<(), Failure> {
        let booking = attempt.booking;
        // Parked first, then marked (as `refund_done` sends first): the poll asks about
        // `requested` refunds only, so a row marked failed whose parcel never reached
        // the dead-letter queue would be a failed refund no operator is shown.
        let retries: i32 = sqlx::query_scalar(
            "select refund_retries from payments where booking_id = $1 and attempt = $2",
        )
        .bind(booking.0)
        .bind(attempt.number)
        .fetch_one(&self.pool)
        .await?;
        // Parked for operators in the payments dead-letter queue (no queue feeds it
        // back by itself): a replay sends it to the saga queue (`x-source-queue`),
        // which retries the refund; `bookctl refund record` records one made by hand.
        let retry = RefundRetry {
            booking_id: booking,
            attempt: attempt.number,
            problem: REFUND_FAILED_PROBLEM.into(),
            reason: why.to_owned(),
            retries: u32::try_from(retries).unwrap_or(0),
        };
        let body = serde_json::to_vec(&retry).map_err(|e| Failure::Abort(e.to_string()))?;
        let step = match retries {
            0 => attempt.step("refund-failed"),
            n => attempt.step(&format!("refund-failed-r{n}")),
        };
        let mut parcel = Parcel::new(MessageId::for_booking(booking, &step).to_string(), &body);
        parcel.kind = Some(REFUND_RETRY_TYPE.into());
        let topo = self.commands.topology();
        platform::amqp::dead_letter(
            self.commands.publisher(),
            &payments_dead_letter(&topo.payments_dlx(), topo.saga_queue()),
            parcel,
            &format!("refund failed: {why}"),
        )
        .await?;
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
        Ok(())
    }
}
