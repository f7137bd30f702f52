//! The payment saga: orchestrated, its state in the `payments` table, driven by
//! events and webhooks, never inside the sequencer's loop.
//!
//! - `BookingHeld` with a payment method (or a pay request from ingress): create
//!   the payment at the gateway (idempotency key = booking id), then send
//!   `PaymentStarted` to the show's partition (seats become `payment_pending`).
//! - A verified webhook (ingress -> `payments.webhooks`): fetch the AUTHORITATIVE
//!   payment status from the gateway and send `PaymentSucceeded` / `PaymentFailed`
//!   into the show's partition, ordered with everything else on that show.
//! - `LatePaymentRefused` and `BookingCancelled`: refund (idempotency key derived
//!   from the booking); `refund.succeeded` sends `RefundCompleted`; a refund that
//!   fails for good lands in the payments dead-letter queue for operators.
//! - A pending payment whose hold ran out: ask the gateway; cancel what is still
//!   processing; confirm what succeeded.
//!
//! Every command the saga sends has a message id fixed by (booking, step), so
//! repeats (duplicate webhooks, redeliveries, two sweeps) are applied once.
//!
//! The queue plumbing (connection, prefetch, concurrency, Retry/Abort settling,
//! dead-lettering) is `platform::amqp::consume`; commands go out through
//! `platform::commands::CommandBus`. This module keeps the saga's own steps;
//! [`consumer`] decodes its queues' deliveries, [`sweep`] resolves expired pending
//! payments, [`poll`] asks the gateway about pending payments on a short backoff
//! (webhooks are a hint, not the only channel), and [`payment_match`] decides
//! whether a payment the gateway returned is the booking's own.

use contracts::{
    BookingId, BookingStatus, Command, CommandEnvelope, Event, EventEnvelope, MessageId,
    PayRequest, ShowId,
};
use payment_adapter::{
    CreatePayment, GatewayError, IntentStatus, PaymentGateway, PaymentIntent, RefundStatus,
    WebhookEvent, WebhookKind,
};
use platform::amqp::{DeadLetterTo, Failure, Parcel};
use platform::commands::CommandBus;
use sqlx::PgPool;
use tracing::Instrument;
use uuid::Uuid;

pub mod consumer;
pub mod payment_match;
pub mod poll;
pub mod sweep;

pub use consumer::{SagaConsumer, SagaQueue, consumer_config};
pub use sweep::run_pending_sweep;

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
                self.start_payment(env.show_id, env.booking_id, *amount, currency, pm)
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

    /// A pay request from ingress for a held booking.
    pub async fn on_pay_request(&self, req: &PayRequest) -> Result<(), Failure> {
        let row: Option<(String, i64, Option<String>)> =
            sqlx::query_as("select status, amount, currency from bookings where id = $1")
                .bind(req.booking_id.0)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some((status, amount, Some(currency)))
                if platform::db::parse_text::<BookingStatus>(&status)? == BookingStatus::Held =>
            {
                self.start_payment(
                    req.show_id,
                    req.booking_id,
                    amount,
                    &currency,
                    req.payment_method.as_str(),
                )
                .await
            }
            // No longer held (expired, already paying): nothing to pay.
            Some(_) => Ok(()),
            None => Err(Failure::Abort(format!(
                "booking {} does not exist",
                req.booking_id
            ))),
        }
    }

    async fn start_payment(
        &self,
        show: ShowId,
        booking: BookingId,
        amount: i64,
        currency: &str,
        method: &str,
    ) -> Result<(), Failure> {
        sqlx::query(
            "insert into payments (booking_id, show_id, method, amount, currency, status, traceparent)
             values ($1, $2, $3, $4, $5, 'creating', $6) on conflict (booking_id) do nothing",
        )
        .bind(booking.0)
        .bind(show.0)
        .bind(method)
        .bind(amount)
        .bind(currency)
        .bind(platform::trace::current().map(|t| t.to_string()))
        .execute(&self.pool)
        .await?;
        // The stored method wins: a second pay request cannot switch cards mid-flight.
        let (method, amount, currency): (String, i64, String) =
            sqlx::query_as("select method, amount, currency from payments where booking_id = $1")
                .bind(booking.0)
                .fetch_one(&self.pool)
                .await?;
        let req = CreatePayment {
            booking_id: booking,
            amount,
            currency,
            payment_method: method,
        };
        match self
            .gateway
            .create_payment(&req, &booking.to_string())
            .await
        {
            Ok(pi) => {
                tracing::info!(booking_id = %booking, payment_id = %pi.id, trace_id = %platform::trace::current_id(), "payment created at the gateway");
                sqlx::query(
                    "update payments set payment_id = $2, updated_at = now(),
                            status = case when status = 'creating' then 'pending' else status end
                      where booking_id = $1",
                )
                .bind(booking.0)
                .bind(&pi.id)
                .execute(&self.pool)
                .await?;
                self.send(
                    show,
                    booking,
                    "payment-started",
                    Command::PaymentStarted {
                        booking_id: booking,
                        payment_id: pi.id.clone(),
                    },
                )
                .await?;
                // Already decided (a fast or repeated create): no need to wait for the webhook.
                self.resolve(show, booking, &pi, None).await
            }
            Err(e) if !e.is_retryable() => {
                tracing::warn!(booking_id = %booking, error = %e, "gateway refused the payment");
                sqlx::query(
                    "update payments set status = 'failed', failure_reason = $2, updated_at = now()
                      where booking_id = $1 and status in ('creating', 'pending')",
                )
                .bind(booking.0)
                .bind(e.to_string())
                .execute(&self.pool)
                .await?;
                self.send(
                    show,
                    booking,
                    "payment-failed",
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

    /// Turns a payment's authoritative status into the sequencer's command.
    pub(crate) async fn resolve(
        &self,
        show: ShowId,
        booking: BookingId,
        pi: &PaymentIntent,
        failure: Option<&str>,
    ) -> Result<(), Failure> {
        if pi.status == IntentStatus::Processing {
            return Ok(());
        }
        // Only the booking's own payment decides it (a signed webhook may name another).
        let (payment_id, amount, currency): (Option<String>, i64, String) = sqlx::query_as(
            "select payment_id, amount, currency from payments where booking_id = $1",
        )
        .bind(booking.0)
        .fetch_one(&self.pool)
        .await?;
        let recorded = payment_match::Recorded {
            payment_id,
            amount,
            currency,
        };
        if let Err(why) = payment_match::check(booking, &recorded, pi) {
            metrics::counter!("saga_payment_mismatches_total").increment(1);
            tracing::error!(booking_id = %booking, payment_id = %pi.id, why, "payment does not belong to the booking; ignored");
            return Ok(());
        }
        let (status, command, step) = match pi.status {
            IntentStatus::Processing => return Ok(()),
            IntentStatus::Succeeded => (
                "succeeded",
                Command::PaymentSucceeded {
                    booking_id: booking,
                    payment_id: pi.id.clone(),
                    amount: pi.amount,
                },
                "payment-succeeded",
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
                        reason,
                    },
                    "payment-failed",
                )
            }
        };
        sqlx::query(
            "update payments set status = $2, payment_id = coalesce(payment_id, $3), updated_at = now()
              where booking_id = $1",
        )
        .bind(booking.0)
        .bind(status)
        .bind(&pi.id)
        .execute(&self.pool)
        .await?;
        metrics::counter!("saga_payments_total", "status" => status).increment(1);
        self.send(show, booking, step, command).await
    }

    async fn refund(
        &self,
        show: ShowId,
        booking: BookingId,
        payment_id: &str,
        amount: i64,
    ) -> Result<(), Failure> {
        sqlx::query(
            "update payments set refund_status = coalesce(refund_status, 'requested'),
                    refund_amount = $2, updated_at = now()
              where booking_id = $1",
        )
        .bind(booking.0)
        .bind(amount)
        .execute(&self.pool)
        .await?;
        if amount <= 0 {
            return self.refund_done(show, booking, "no_refund_due", 0).await;
        }
        let key = format!("{booking}-refund");
        match self.gateway.refund(payment_id, amount, &key).await {
            Ok(r) => {
                sqlx::query(
                    "update payments set refund_id = $2, updated_at = now() where booking_id = $1",
                )
                .bind(booking.0)
                .bind(&r.id)
                .execute(&self.pool)
                .await?;
                match r.status {
                    RefundStatus::Pending => Ok(()),
                    RefundStatus::Succeeded => {
                        self.refund_done(show, booking, &r.id, r.amount).await
                    }
                    RefundStatus::Failed => {
                        let why = r.failure_reason.unwrap_or_else(|| "refund_failed".into());
                        self.refund_failed(booking, &why).await
                    }
                }
            }
            Err(e) if !e.is_retryable() => self.refund_failed(booking, &e.to_string()).await,
            Err(e) => Err(gateway_error(e)),
        }
    }

    async fn refund_done(
        &self,
        show: ShowId,
        booking: BookingId,
        refund_id: &str,
        amount: i64,
    ) -> Result<(), Failure> {
        sqlx::query(
            "update payments set refund_status = 'succeeded', refund_id = $2, updated_at = now()
              where booking_id = $1",
        )
        .bind(booking.0)
        .bind(refund_id)
        .execute(&self.pool)
        .await?;
        metrics::counter!("saga_refunds_total", "status" => "succeeded").increment(1);
        self.send(
            show,
            booking,
            "refund-completed",
            Command::RefundCompleted {
                booking_id: booking,
                refund_id: refund_id.to_owned(),
                amount,
            },
        )
        .await
    }

    async fn refund_failed(&self, booking: BookingId, why: &str) -> Result<(), Failure> {
        sqlx::query(
            "update payments set refund_status = 'failed', failure_reason = $2, updated_at = now()
              where booking_id = $1",
        )
        .bind(booking.0)
        .bind(why)
        .execute(&self.pool)
        .await?;
        metrics::counter!("saga_refunds_total", "status" => "failed").increment(1);
        // Parked for operators in the payments dead-letter queue (no queue feeds it
        // back by itself: `x-source-queue` is the saga queue, for a replay).
        let body =
            serde_json::json!({"booking_id": booking, "problem": "refund_failed", "reason": why})
                .to_string();
        let topo = self.commands.topology();
        platform::amqp::dead_letter(
            self.commands.publisher(),
            &payments_dead_letter(&topo.payments_dlx(), topo.saga_queue()),
            Parcel::new(
                MessageId::for_booking(booking, "refund-failed").to_string(),
                body.as_bytes(),
            ),
            &format!("refund failed: {why}"),
        )
        .await?;
        Ok(())
    }

    /// Reacts to one verified gateway webhook.
    #[tracing::instrument(skip_all, fields(booking_id = %ev.data.booking_id, event = %ev.kind))]
    pub async fn on_webhook(&self, ev: &WebhookEvent) -> Result<(), Failure> {
        let booking = BookingId(ev.data.booking_id);
        let row: Option<(Uuid, Option<String>)> =
            sqlx::query_as("select show_id, traceparent from payments where booking_id = $1")
                .bind(booking.0)
                .fetch_optional(&self.pool)
                .await?;
        let Some((show, trace)) = row else {
            return Err(Failure::Abort(format!(
                "webhook for unknown booking {booking}"
            )));
        };
        // The webhook continues the booking's trace, not the gateway's call.
        let trace = trace
            .as_deref()
            .and_then(contracts::TraceParent::parse)
            .or_else(platform::trace::current);
        let span = tracing::info_span!("saga.handle", kind = %ev.kind);
        platform::trace::attach(&span, trace);
        platform::trace::scope(trace, self.on_booking_webhook(ShowId(show), booking, ev))
            .instrument(span)
            .await
    }

    async fn on_booking_webhook(
        &self,
        show: ShowId,
        booking: BookingId,
        ev: &WebhookEvent,
    ) -> Result<(), Failure> {
        match ev.webhook_kind() {
            WebhookKind::PaymentSucceeded | WebhookKind::PaymentFailed => {
                // The webhook is a hint; the gateway's own answer decides.
                let pi = self
                    .gateway
                    .get_payment(&ev.data.payment_id)
                    .await
                    .map_err(gateway_error)?;
                self.resolve(show, booking, &pi, None).await
            }
            WebhookKind::RefundSucceeded => {
                let refund_id = ev.data.refund_id.clone().unwrap_or_default();
                self.refund_done(show, booking, &refund_id, ev.data.amount)
                    .await
            }
            WebhookKind::RefundFailed => {
                let why = ev
                    .data
                    .reason
                    .clone()
                    .unwrap_or_else(|| "refund_failed".into());
                self.refund_failed(booking, &why).await
            }
            WebhookKind::Other => {
                tracing::info!(kind = %ev.kind, "webhook type ignored");
                Ok(())
            }
        }
    }

    /// A payment still pending when its hold ran out: the gateway decides.
    pub async fn resolve_expired(&self, show: ShowId, booking: BookingId) -> Result<(), Failure> {
        let payment_id: Option<String> =
            sqlx::query_scalar("select payment_id from payments where booking_id = $1")
                .bind(booking.0)
                .fetch_optional(&self.pool)
                .await?
                .flatten();
        let Some(payment_id) = payment_id else {
            return Ok(());
        };
        let pi = self
            .gateway
            .get_payment(&payment_id)
            .await
            .map_err(gateway_error)?;
        if pi.status != IntentStatus::Processing {
            return self.resolve(show, booking, &pi, None).await;
        }
        match self.gateway.cancel_payment(&payment_id).await {
            Ok(pi) => self.resolve(show, booking, &pi, Some("hold_expired")).await,
            Err(e) if !e.is_retryable() => {
                // It moved on meanwhile (succeeded): ask again.
                let pi = self
                    .gateway
                    .get_payment(&payment_id)
                    .await
                    .map_err(gateway_error)?;
                self.resolve(show, booking, &pi, Some("hold_expired")).await
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
