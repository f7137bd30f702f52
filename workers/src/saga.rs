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

use contracts::topology::{DEAD_LETTER_REASON_HEADER, PAY_REQUEST_TYPE, SOURCE_QUEUE_HEADER};
use contracts::{
    BookingId, Command, CommandEnvelope, Event, EventEnvelope, MessageId, ShowId, Topology,
};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use payment_adapter::{
    CreatePayment, GatewayError, IntentStatus, PaymentGateway, PaymentIntent, RefundStatus,
    WebhookEvent,
};
use platform::amqp::{ConfirmedPublisher, PublishError, json_properties};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// A customer asks to pay a held booking that was created without a method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayRequest {
    pub booking_id: BookingId,
    pub show_id: ShowId,
    pub payment_method: String,
}

/// What a saga step asks of its consumer.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// Try again later (gateway down, database down, broker hiccup).
    #[error("retry: {0}")]
    Retry(String),
    /// Never going to work: dead-letter with this reason.
    #[error("abort: {0}")]
    Abort(String),
}

impl From<sqlx::Error> for SagaError {
    fn from(e: sqlx::Error) -> Self {
        SagaError::Retry(format!("postgres: {e}"))
    }
}

impl From<PublishError> for SagaError {
    fn from(e: PublishError) -> Self {
        SagaError::Retry(format!("rabbitmq: {e}"))
    }
}

fn gateway_error(e: GatewayError) -> SagaError {
    if e.is_retryable() {
        SagaError::Retry(e.to_string())
    } else {
        SagaError::Abort(e.to_string())
    }
}

pub struct Saga<G> {
    pub pool: PgPool,
    pub gateway: G,
    pub topology: Topology,
    pub publisher: ConfirmedPublisher,
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
    ) -> Result<(), SagaError> {
        let env = CommandEnvelope {
            message_id: MessageId::for_booking(booking, step),
            show_id: show,
            issued_at: platform::now_millis(),
            request_id: None,
            trace: platform::trace::current().map(|t| t.child()),
            command,
        };
        let p = self.topology.partition_of(show);
        let body = serde_json::to_vec(&env).map_err(|e| SagaError::Abort(e.to_string()))?;
        self.publisher
            .publish(
                &self.topology.commands_exchange(),
                &self.topology.partition_key(p),
                &body,
                json_properties(&env.message_id.to_string(), FieldTable::default()),
            )
            .await?;
        tracing::info!(booking_id = %booking, step, trace_id = %platform::trace::current_id(), "saga sent command");
        Ok(())
    }

    /// Parks a message operators must see (a refund that failed for good, a message
    /// that can never be handled) in the payments dead-letter queue, keeping its id,
    /// its AMQP type and the queue it came from, so a replay goes back where it was.
    async fn dead_letter(
        &self,
        message_id: &str,
        source_queue: &str,
        kind: Option<ShortString>,
        body: &[u8],
        reason: &str,
    ) -> Result<(), SagaError> {
        let mut headers = FieldTable::default();
        headers.insert(
            DEAD_LETTER_REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason.to_owned())),
        );
        headers.insert(
            SOURCE_QUEUE_HEADER.into(),
            AMQPValue::LongString(LongString::from(source_queue.to_owned())),
        );
        let mut props = json_properties(message_id, headers);
        if let Some(kind) = kind {
            props = props.with_type(kind);
        }
        self.publisher
            .publish(&self.topology.payments_dlx(), "", body, props)
            .await?;
        metrics::counter!("dead_lettered_total", "queue" => "payments").increment(1);
        tracing::error!(
            message_id,
            reason,
            "payment problem dead-lettered for operators"
        );
        Ok(())
    }

    /// Reacts to one booking event.
    #[tracing::instrument(skip_all, fields(booking_id = %env.booking_id, event = env.event.routing_key()))]
    pub async fn on_event(&self, env: &EventEnvelope) -> Result<(), SagaError> {
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
    pub async fn on_pay_request(&self, req: &PayRequest) -> Result<(), SagaError> {
        let row: Option<(String, i64, Option<String>)> =
            sqlx::query_as("select status, amount, currency from bookings where id = $1")
                .bind(req.booking_id.0)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some((status, amount, Some(currency))) if status == "held" => {
                self.start_payment(
                    req.show_id,
                    req.booking_id,
                    amount,
                    &currency,
                    &req.payment_method,
                )
                .await
            }
            // No longer held (expired, already paying): nothing to pay.
            Some(_) => Ok(()),
            None => Err(SagaError::Abort(format!(
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
    ) -> Result<(), SagaError> {
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
    ) -> Result<(), SagaError> {
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
        let recorded = crate::payment_match::Recorded {
            payment_id,
            amount,
            currency,
        };
        if let Err(why) = crate::payment_match::check(booking, &recorded, pi) {
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
    ) -> Result<(), SagaError> {
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
    ) -> Result<(), SagaError> {
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

    async fn refund_failed(&self, booking: BookingId, why: &str) -> Result<(), SagaError> {
        sqlx::query(
            "update payments set refund_status = 'failed', failure_reason = $2, updated_at = now()
              where booking_id = $1",
        )
        .bind(booking.0)
        .bind(why)
        .execute(&self.pool)
        .await?;
        metrics::counter!("saga_refunds_total", "status" => "failed").increment(1);
        let body =
            serde_json::json!({"booking_id": booking, "problem": "refund_failed", "reason": why});
        self.dead_letter(
            &MessageId::for_booking(booking, "refund-failed").to_string(),
            &self.topology.saga_queue(),
            None,
            body.to_string().as_bytes(),
            &format!("refund failed: {why}"),
        )
        .await
    }

    /// Reacts to one verified gateway webhook.
    #[tracing::instrument(skip_all, fields(booking_id = %ev.data.booking_id, event = %ev.kind))]
    pub async fn on_webhook(&self, ev: &WebhookEvent) -> Result<(), SagaError> {
        let booking = BookingId(ev.data.booking_id);
        let row: Option<(Uuid, Option<String>)> =
            sqlx::query_as("select show_id, traceparent from payments where booking_id = $1")
                .bind(booking.0)
                .fetch_optional(&self.pool)
                .await?;
        let Some((show, trace)) = row else {
            return Err(SagaError::Abort(format!(
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
    ) -> Result<(), SagaError> {
        match ev.kind.as_str() {
            "payment.succeeded" | "payment.failed" => {
                // The webhook is a hint; the gateway's own answer decides.
                let pi = self
                    .gateway
                    .get_payment(&ev.data.payment_id)
                    .await
                    .map_err(gateway_error)?;
                self.resolve(show, booking, &pi, None).await
            }
            "refund.succeeded" => {
                let refund_id = ev.data.refund_id.clone().unwrap_or_default();
                self.refund_done(show, booking, &refund_id, ev.data.amount)
                    .await
            }
            "refund.failed" => {
                let why = ev
                    .data
                    .reason
                    .clone()
                    .unwrap_or_else(|| "refund_failed".into());
                self.refund_failed(booking, &why).await
            }
            other => {
                tracing::info!(kind = other, "webhook type ignored");
                Ok(())
            }
        }
    }

    /// A payment still pending when its hold ran out: the gateway decides.
    pub async fn resolve_expired(&self, show: ShowId, booking: BookingId) -> Result<(), SagaError> {
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

/// Which saga handler a queue feeds.
#[derive(Clone, Copy, Debug)]
pub enum SagaQueue {
    Events,
    Webhooks,
}

async fn handle<G: PaymentGateway>(
    saga: &Saga<G>,
    which: SagaQueue,
    d: &Delivery,
) -> Result<(), SagaError> {
    let abort = |e: serde_json::Error| SagaError::Abort(format!("unparseable message: {e}"));
    let header = platform::trace::from_properties(&d.properties);
    match which {
        SagaQueue::Webhooks => {
            let ev = serde_json::from_slice(&d.data).map_err(abort)?;
            platform::trace::scope(header, saga.on_webhook(&ev)).await
        }
        SagaQueue::Events => on_saga_message(saga, d, header).await,
    }
}

/// A message of the saga queue: a booking event or a pay request, handled in its
/// trace (an exported `saga.handle` span under it).
async fn on_saga_message<G: PaymentGateway>(
    saga: &Saga<G>,
    d: &Delivery,
    header: Option<contracts::TraceParent>,
) -> Result<(), SagaError> {
    let abort = |e: serde_json::Error| SagaError::Abort(format!("unparseable message: {e}"));
    let is_pay_request = d
        .properties
        .kind()
        .as_ref()
        .is_some_and(|k| k.as_str() == PAY_REQUEST_TYPE);
    if is_pay_request {
        let req = serde_json::from_slice(&d.data).map_err(abort)?;
        let span = tracing::info_span!("saga.handle", kind = "pay_request");
        platform::trace::attach(&span, header);
        platform::trace::scope(header, saga.on_pay_request(&req))
            .instrument(span)
            .await
    } else {
        let env: EventEnvelope = serde_json::from_slice(&d.data).map_err(abort)?;
        let trace = env.trace.or(header);
        let span = tracing::info_span!("saga.handle", kind = env.event.routing_key());
        platform::trace::attach(&span, trace);
        platform::trace::scope(trace, saga.on_event(&env))
            .instrument(span)
            .await
    }
}

/// Consumes `which` until shutdown, reconnecting after failures.
pub async fn run<G: PaymentGateway + 'static>(
    saga: Arc<Saga<G>>,
    amqp_url: String,
    which: SagaQueue,
    prefetch: u16,
    shutdown: CancellationToken,
) {
    let queue = match which {
        SagaQueue::Events => saga.topology.saga_queue(),
        SagaQueue::Webhooks => saga.topology.webhooks_queue(),
    };
    loop {
        let res: anyhow::Result<()> = async {
            let conn = platform::amqp::connect(&amqp_url, &format!("saga-{queue}")).await?;
            let ch = conn.create_channel().await?;
            ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
            let consumer = ch
                .basic_consume(
                    queue.clone().into(),
                    format!("saga-{}", Uuid::new_v4().simple()).into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            let saga = &saga;
            let source: &str = &queue;
            let stream = consumer.take_until(shutdown.cancelled());
            stream
                // As many handlers at once as the broker may have unacked: each
                // waits mostly on the gateway and PostgreSQL, not on CPU.
                .for_each_concurrent(usize::from(prefetch.max(1)), |d| async move {
                    let Ok(d) = d else { return };
                    match handle(saga, which, &d).await {
                        Ok(()) => drop(d.ack(BasicAckOptions::default()).await),
                        Err(SagaError::Abort(reason)) => {
                            let id = d
                                .properties
                                .message_id()
                                .as_ref()
                                .map_or_else(|| Uuid::now_v7().to_string(), |m| m.to_string());
                            let kind = d.properties.kind().clone();
                            if saga.dead_letter(&id, source, kind, &d.data, &reason).await.is_ok() {
                                drop(d.ack(BasicAckOptions::default()).await);
                            } else {
                                drop(d.nack(BasicNackOptions { requeue: true, multiple: false }).await);
                            }
                        }
                        Err(SagaError::Retry(e)) => {
                            let n = platform::amqp::delivery_count(&d);
                            let wait = Duration::from_millis(100u64 << n.min(6));
                            tracing::warn!(error = %e, attempt = n, retry_in = ?wait, "saga step failed; retrying");
                            metrics::counter!("saga_retries_total").increment(1);
                            tokio::time::sleep(wait).await;
                            drop(d.nack(BasicNackOptions { requeue: true, multiple: false }).await);
                        }
                    }
                })
                .await;
            drop(conn.close(200, "saga stopping".into()).await);
            Ok(())
        }
        .await;
        if shutdown.is_cancelled() {
            return;
        }
        if let Err(e) = res {
            tracing::warn!(queue = %queue, error = %e, "saga consumer ended; reconnecting");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Resolves pending payments whose hold ran out, every `every`.
pub async fn run_pending_sweep<G: PaymentGateway + 'static>(
    saga: Arc<Saga<G>>,
    partitions: Vec<u16>,
    grace: Duration,
    every: Duration,
    shutdown: CancellationToken,
) {
    /// Most pending payments resolved per sweep.
    const PENDING_SWEEP_MAX: i64 = 500;
    /// A booking resolved once is looked at again only after this long.
    const AGAIN_AFTER: Duration = Duration::from_secs(10);
    let mut recent: HashMap<Uuid, Instant> = HashMap::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
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
                    if !partitions.contains(&saga.topology.partition_of(show))
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
}
