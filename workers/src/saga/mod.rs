//! The payment saga: orchestrated, its state in the `payments` table, driven by
//! events and webhooks, never inside the sequencer's loop.
//!
//! - `BookingHeld` with a payment method (or a pay request from ingress): start a
//!   payment attempt ([`attempt`]: one `payments` row and one gateway idempotency
//!   key per attempt), create it at the gateway, then send `PaymentStarted` to the
//!   show's partition (seats become `payment_pending`). A declined attempt puts
//!   the booking back to `held` while its hold lasts, and another pay request
//!   starts the next attempt; the sequencer keeps at most one capture and asks for
//!   every other one to be refunded (`LatePaymentRefused`).
//! - A verified webhook (ingress -> `payments.webhooks`): fetch the AUTHORITATIVE
//!   payment status from the gateway and send `PaymentSucceeded` / `PaymentFailed`
//!   into the show's partition, ordered with everything else on that show.
//! - `LatePaymentRefused` and `BookingCancelled`: refund the payment they name
//!   ([`refund`]; idempotency key derived from its attempt); a refund the gateway
//!   says succeeded (asked on `refund.succeeded`, or by the poll) sends
//!   `RefundCompleted` if it is the refund the booking asked for
//!   ([`refund_match`]); a refund that fails for good lands in the payments
//!   dead-letter queue for operators.
//! - A pending payment whose hold ran out: ask the gateway; cancel what is still
//!   processing; confirm what succeeded.
//!
//! Every command the saga sends has a message id fixed by (booking, attempt, step),
//! so repeats (duplicate webhooks, redeliveries, two sweeps) are applied once.
//!
//! The queue plumbing (connection, prefetch, concurrency, Retry/Abort settling,
//! dead-lettering) is `platform::amqp::consume`; commands go out through
//! `platform::commands::CommandBus`. This module keeps the saga's own steps;
//! [`consumer`] decodes its queues' deliveries, [`sweep`] resolves expired pending
//! payments, [`poll`] asks the gateway about pending payments and unsettled refunds
//! on a short backoff (webhooks are a hint, not the only channel), and
//! [`payment_match`] / [`refund_match`] decide whether a payment / refund the
//! gateway returned is the booking's own.

use attempt::Attempt;
use contracts::{
    BookingId, BookingStatus, Command, CommandEnvelope, Event, EventEnvelope, MessageId,
    PayRequest, ShowId,
};
use payment_adapter::{
    CreatePayment, GatewayError, IntentStatus, PaymentGateway, PaymentIntent, WebhookEvent,
    WebhookKind,
};
use platform::amqp::{DeadLetterTo, Failure};
use platform::commands::CommandBus;
use sqlx::PgPool;
use std::sync::Arc;
use tracing::Instrument;
use uuid::Uuid;

pub mod attempt;
pub mod consumer;
pub mod payment_match;
pub mod poll;
mod refund;
pub mod refund_match;
mod refund_ops;
pub mod sweep;

pub use consumer::{SagaConsumer, SagaQueue, consumer_config};
pub use sweep::run_pending_sweep;

/// show, traceparent, whether the row is the payment the webhook names, then the
/// attempt's columns (`attempt::Row`).
type WebhookRow = (
    Uuid,
    Option<String>,
    Option<bool>,
    Uuid,
    i32,
    Option<String>,
    String,
    i64,
    String,
);

fn gateway_error(e: GatewayError) -> Failure {
    if e.is_retryable() {
        Failure::Retry(e.to_string())
    } else {
        Failure::Abort(e.to_string())
    }
}

pub struct Saga<G> {
    pub pool: PgPool,
    pub gateway: G,
    /// Commands into the partitions; its publisher also parks refund failures.
    pub commands: CommandBus,
    /// Test hooks (`saga_send_fail`); none in production.
    pub faults: Arc<crate::runner::Faults>,
}

impl<G: PaymentGateway> Saga<G> {
    /// Sends `command` about `booking` to the show's partition; `step` fixes the
    /// message id so a repeat is deduped by the sequencer's inbox.
    async fn send(
        &self,
        show: ShowId,
        booking: BookingId,
        step: &str,
        command: Command,
    ) -> Result<(), Failure> {
        let env = CommandEnvelope::new(
            MessageId::for_booking(booking, step),
            show,
            platform::now_millis(),
            command,
        )
        .with_trace(platform::trace::current().map(|t| t.child()));
        self.commands.send(&env).await?;
        tracing::info!(booking_id = %booking, step, trace_id = %platform::trace::current_id(), "saga sent command");
        Ok(())
    }

    /// Reacts to one booking event.
    #[tracing::instrument(skip_all, fields(booking_id = %env.booking_id, event = env.event.routing_key()))]
    pub async fn on_event(&self, env: &EventEnvelope) -> Result<(), Failure> {
        match &env.event {
            Event::BookingHeld {
                payment_method: Some(pm),
                amount,
                currency,
                ..
            } => {
                // The booking's own first attempt: named by the booking id.
                let request = env.booking_id.0;
                self.start_payment(env.show_id, env.booking_id, request, *amount, currency, pm)
                    .await
            }
            Event::LatePaymentRefused {
                payment_id, amount, ..
            } => {
                self.refund(env.show_id, env.booking_id, payment_id, *amount)
                    .await
            }
            Event::BookingCancelled {
                payment_id,
                refund_amount,
                ..
            } => {
                self.refund(env.show_id, env.booking_id, payment_id, *refund_amount)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// A pay request from ingress: a new attempt for a held booking. A booking
    /// whose payment started meanwhile (another request raced this one past
    /// ingress) gets the attempt too: the buyer asked for it, and the sequencer
    /// keeps only one capture and refunds the other.
    pub async fn on_pay_request(&self, req: &PayRequest) -> Result<(), Failure> {
        let row: Option<(String, i64, Option<String>)> =
            sqlx::query_as("select status, amount, currency from bookings where id = $1")
                .bind(req.booking_id.0)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some((status, amount, Some(currency)))
                if matches!(
                    platform::db::parse_text::<BookingStatus>(&status)?,
                    BookingStatus::Held | BookingStatus::PaymentPending
                ) =>
            {
                // Requests from before attempts carry no id: one per (booking, method).
                let request = req.request_id.unwrap_or_else(|| {
                    let named = format!("pay-request-{}", req.payment_method);
                    MessageId::for_booking(req.booking_id, &named).0
                });
                self.start_payment(
                    req.show_id,
                    req.booking_id,
                    request,
                    amount,
                    &currency,
                    req.payment_method.as_str(),
                )
                .await
            }
            // No longer payable (expired, released, paid): nothing to pay.
            Some(_) => Ok(()),
            None => Err(Failure::Abort(format!(
                "booking {} does not exist",
                req.booking_id
            ))),
        }
    }

    /// Starts (or, for a repeated request, continues) the attempt named by
    /// `request` and creates its payment at the gateway.
    async fn start_payment(
        &self,
        show: ShowId,
        booking: BookingId,
        request: Uuid,
        amount: i64,
        currency: &str,
        method: &str,
    ) -> Result<(), Failure> {
        let trace = platform::trace::current().map(|t| t.to_string());
        // The stored attempt wins: a repeated request cannot switch its card.
        let mut attempt = attempt::start(
            &self.pool, booking, show, request, method, amount, currency, trace,
        )
        .await?;
        let req = CreatePayment {
            booking_id: booking,
            amount: attempt.amount,
            currency: attempt.currency.clone(),
            payment_method: attempt.method.clone(),
        };
        match self
            .gateway
            .create_payment(&req, &attempt.gateway_key())
            .await
        {
            Ok(pi) => {
                tracing::info!(booking_id = %booking, attempt = attempt.number, payment_id = %pi.id, trace_id = %platform::trace::current_id(), "payment created at the gateway");
                sqlx::query(
                    "update payments set payment_id = $3, updated_at = now(),
                            status = case when status = 'creating' then 'pending' else status end
                      where booking_id = $1 and attempt = $2",
                )
                .bind(booking.0)
                .bind(attempt.number)
                .bind(&pi.id)
                .execute(&self.pool)
                .await?;
                attempt.payment_id = Some(pi.id.clone());
                self.send(
                    show,
                    booking,
                    &attempt.step("payment-started"),
                    Command::PaymentStarted {
                        booking_id: booking,
                        payment_id: pi.id.clone(),
                    },
                )
                .await?;
                // Already decided (a fast or repeated create): no need to wait for the webhook.
                self.resolve(show, &attempt, &pi, None).await
            }
            Err(e) if !e.is_retryable() => {
                tracing::warn!(booking_id = %booking, attempt = attempt.number, error = %e, "gateway refused the payment");
                let code = match &e {
                    GatewayError::Rejected { code, .. } => code.clone(),
                    _ => "payment_refused".to_owned(),
                };
                sqlx::query(
                    "update payments set status = 'failed', failure_reason = $3, updated_at = now()
                      where booking_id = $1 and attempt = $2 and status in ('creating', 'pending')",
                )
                .bind(booking.0)
                .bind(attempt.number)
                .bind(&code)
                .execute(&self.pool)
                .await?;
                self.send(
                    show,
                    booking,
                    &attempt.step("payment-failed"),
                    Command::PaymentFailed {
                        booking_id: booking,
                        payment_id: String::new(),
                        reason: "payment_refused".to_owned(),
                    },
                )
                .await
            }
            Err(e) => Err(gateway_error(e)),
        }
    }

    /// Turns an attempt's authoritative status into the sequencer's command.
    pub(crate) async fn resolve(
        &self,
        show: ShowId,
        attempt: &Attempt,
        pi: &PaymentIntent,
        failure: Option<&str>,
    ) -> Result<(), Failure> {
        if pi.status == IntentStatus::Processing {
            return Ok(());
        }
        let booking = attempt.booking;
        // Only the attempt's own payment decides it (a signed webhook may name another).
        if let Err(why) = payment_match::check(booking, &attempt.recorded(), pi) {
            metrics::counter!("saga_payment_mismatches_total").increment(1);
            tracing::error!(booking_id = %booking, payment_id = %pi.id, why, "payment does not belong to the booking; ignored");
            return Ok(());
        }
        let (status, command, step, reason) = match pi.status {
            IntentStatus::Processing => return Ok(()),
            IntentStatus::Succeeded => (
                "succeeded",
                Command::PaymentSucceeded {
                    booking_id: booking,
                    payment_id: pi.id.clone(),
                    amount: pi.amount,
                },
                "payment-succeeded",
                None,
            ),
            IntentStatus::RequiresPaymentMethod | IntentStatus::Canceled => {
                let reason = failure
                    .map(str::to_owned)
                    .or_else(|| pi.last_payment_error.as_ref().map(|e| e.code.clone()))
                    .unwrap_or_else(|| "canceled".to_owned());
                (
                    if pi.status == IntentStatus::Canceled {
                        "canceled"
                    } else {
                        "failed"
                    },
                    Command::PaymentFailed {
                        booking_id: booking,
                        payment_id: pi.id.clone(),
                        reason: reason.clone(),
                    },
                    "payment-failed",
                    Some(reason),
                )
            }
        };
        // The gateway id is recorded first (what the command's consequences, e.g. a
        // refund, look the attempt up by); then the command; then the status. The poll
        // asks about `pending` rows only, so a row marked settled whose command was
        // never sent (the broker away at that moment) left the booking
        // `payment_pending` with the money taken (the soak saw it). A crash between
        // the command and the status sends the command again on the next poll; its
        // message id is fixed, so the sequencer applies it once.
        // (An attempt read with its id has it recorded already: no second trip.)
        if attempt.payment_id.is_none() {
            sqlx::query(
                "update payments set payment_id = $3, updated_at = now()
                  where booking_id = $1 and attempt = $2 and payment_id is null",
            )
            .bind(booking.0)
            .bind(attempt.number)
            .bind(&pi.id)
            .execute(&self.pool)
            .await?;
        }
        if crate::runner::Faults::take(&self.faults.saga_send_fail) {
            return Err(Failure::Retry("rabbitmq: unreachable (injected)".into()));
        }
        self.send(show, booking, &attempt.step(step), command)
            .await?;
        sqlx::query(
            "update payments set status = $3, failure_reason = coalesce($4, failure_reason),
                    updated_at = now()
              where booking_id = $1 and attempt = $2",
        )
        .bind(booking.0)
        .bind(attempt.number)
        .bind(status)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        metrics::counter!("saga_payments_total", "status" => status).increment(1);
        Ok(())
    }

    /// Reacts to one verified gateway webhook.
    #[tracing::instrument(skip_all, fields(booking_id = %ev.data.booking_id, event = %ev.kind))]
    pub async fn on_webhook(&self, ev: &WebhookEvent) -> Result<(), Failure> {
        let booking = BookingId(ev.data.booking_id);
        // The attempt the webhook names (with its columns, so the handler needs no
        // second trip), else the booking's latest: for the trace.
        let row: Option<WebhookRow> = sqlx::query_as(
            "select show_id, traceparent, payment_id = $2,
                    booking_id, attempt, payment_id, method, amount, currency
               from payments where booking_id = $1
              order by payment_id is not distinct from $2 desc, attempt desc limit 1",
        )
        .bind(booking.0)
        .bind(&ev.data.payment_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((show, trace, named, b, number, payment_id, method, amount, currency)) = row
        else {
            return Err(Failure::Abort(format!(
                "webhook for unknown booking {booking}"
            )));
        };
        let named = named
            .unwrap_or(false)
            .then(|| attempt::of_row((b, number, payment_id, method, amount, currency)));
        // The webhook continues the booking's trace, not the gateway's call.
        let trace = trace
            .as_deref()
            .and_then(contracts::TraceParent::parse)
            .or_else(platform::trace::current);
        let span = tracing::info_span!("saga.handle", kind = %ev.kind);
        platform::trace::attach(&span, trace);
        platform::trace::scope(
            trace,
            self.on_booking_webhook(ShowId(show), booking, named, ev),
        )
        .instrument(span)
        .await
    }

    async fn on_booking_webhook(
        &self,
        show: ShowId,
        booking: BookingId,
        named: Option<Attempt>,
        ev: &WebhookEvent,
    ) -> Result<(), Failure> {
        let Some(attempt) = named else {
            if attempt::has_unrecorded(&self.pool, booking).await? {
                // Its create call has not answered yet: the webhook came first.
                return Err(Failure::Retry(format!(
                    "payment {} of booking {booking} is not recorded yet",
                    ev.data.payment_id
                )));
            }
            metrics::counter!("saga_payment_mismatches_total").increment(1);
            tracing::error!(booking_id = %booking, payment_id = %ev.data.payment_id, "webhook names no payment of the booking; ignored");
            return Ok(());
        };
        match ev.webhook_kind() {
            WebhookKind::PaymentSucceeded | WebhookKind::PaymentFailed => {
                // The webhook is a hint; the gateway's own answer decides.
                let pi = self
                    .gateway
                    .get_payment(&ev.data.payment_id)
                    .await
                    .map_err(gateway_error)?;
                self.resolve(show, &attempt, &pi, None).await
            }
            WebhookKind::RefundSucceeded | WebhookKind::RefundFailed => {
                // A hint too: the gateway's refund decides, if it is the booking's.
                let refund_id = ev.data.refund_id.as_deref().unwrap_or_default();
                self.settle_refund(show, &attempt, refund_id).await
            }
            WebhookKind::Other => {
                tracing::info!(kind = %ev.kind, "webhook type ignored");
                Ok(())
            }
        }
    }

    /// A booking whose payment was still pending when its hold ran out: the
    /// gateway decides each attempt still open.
    pub async fn resolve_expired(&self, show: ShowId, booking: BookingId) -> Result<(), Failure> {
        for attempt in attempt::open_of(&self.pool, booking).await? {
            self.resolve_expired_attempt(show, &attempt).await?;
        }
        Ok(())
    }

    async fn resolve_expired_attempt(
        &self,
        show: ShowId,
        attempt: &Attempt,
    ) -> Result<(), Failure> {
        let Some(payment_id) = attempt.payment_id.as_deref() else {
            return Ok(());
        };
        let pi = self
            .gateway
            .get_payment(payment_id)
            .await
            .map_err(gateway_error)?;
        if pi.status != IntentStatus::Processing {
            return self.resolve(show, attempt, &pi, None).await;
        }
        match self.gateway.cancel_payment(payment_id).await {
            Ok(pi) => self.resolve(show, attempt, &pi, Some("hold_expired")).await,
            Err(e) if !e.is_retryable() => {
                // It moved on meanwhile (succeeded): ask again.
                let pi = self
                    .gateway
                    .get_payment(payment_id)
                    .await
                    .map_err(gateway_error)?;
                self.resolve(show, attempt, &pi, Some("hold_expired")).await
            }
            Err(e) => Err(gateway_error(e)),
        }
    }
}

/// Where the saga parks what it gives up on: the payments dead-letter queue,
/// recording the saga queue it came from (a replay goes back there).
fn payments_dead_letter(dlx: &str, source_queue: String) -> DeadLetterTo {
    DeadLetterTo {
        exchange: dlx.to_owned(),
        routing_key: String::new(),
        source_queue,
        metric_label: ("queue", "payments".into()),
    }
}
