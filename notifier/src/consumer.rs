//! The consumer: booking events in, one email each out.
//!
//! Idempotent by event id: a `sent_messages` row is claimed before the send and
//! finalised after it, so a redelivered event sends nothing more. A transient SMTP
//! failure (4xx, connection, timeout) is retried in-process with backoff, then the
//! event is requeued (bounded by the queue's delivery limit, past which the broker
//! dead-letters it); a permanent one (5xx, a bad address) goes to the notifier
//! dead-letter queue with the reason.

use crate::mail::{Mailer, Recipient, SendError, ShowInfo, Template, Templates};
use backon::{ExponentialBuilder, Retryable};
use contracts::topology::{DEAD_LETTER_REASON_HEADER, SOURCE_QUEUE_HEADER};
use contracts::{EventEnvelope, Topology};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use platform::amqp::{ConfirmedPublisher, json_properties};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tickets::{TicketClaims, TicketKeys};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Concurrent sends per consumer.
const NOTIFIER_CONCURRENCY: usize = 8;
/// Extra lease time beyond the worst-case send, for the database round trips.
const LEASE_SLACK: Duration = Duration::from_secs(30);

/// What a step asks of its consumer.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("retry: {0}")]
    Retry(String),
    #[error("abort: {0}")]
    Abort(String),
}

impl From<sqlx::Error> for NotifyError {
    fn from(e: sqlx::Error) -> Self {
        NotifyError::Retry(format!("postgres: {e}"))
    }
}

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Already sent (or already failed for good): nothing more.
    Duplicate,
    /// The event gets no email.
    Ignored,
}

/// Bounded in-process retries of one send.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts_max: usize,
    pub initial: Duration,
    pub max: Duration,
    pub smtp_timeout: Duration,
}

impl RetryPolicy {
    fn lease(&self) -> Duration {
        let per = self.smtp_timeout + self.max;
        per * u32::try_from(self.attempts_max.max(1)).unwrap_or(u32::MAX) + LEASE_SLACK
    }
}

pub struct Notifier {
    pub pool: PgPool,
    pub topology: Topology,
    pub publisher: ConfirmedPublisher,
    pub mailer: Mailer,
    pub templates: Templates,
    pub keys: TicketKeys,
    pub retry: RetryPolicy,
}

impl Notifier {
    pub fn from_settings(
        s: &platform::Settings,
        pool: PgPool,
        publisher: ConfirmedPublisher,
    ) -> anyhow::Result<Self> {
        let n = &s.notifier;
        Ok(Self {
            pool,
            topology: s.topology(),
            publisher,
            mailer: Mailer::from_settings(n)?,
            templates: Templates::new()?,
            keys: TicketKeys::from_config(
                &n.ticket_current_kid,
                &n.ticket_signing_keys,
                &n.ticket_public_keys,
            )?,
            retry: RetryPolicy {
                attempts_max: n.send_attempts_max.max(1),
                initial: Duration::from_millis(n.retry_initial_ms),
                max: Duration::from_millis(n.retry_max_ms),
                smtp_timeout: Duration::from_millis(n.smtp_timeout_ms),
            },
        })
    }

    /// Claims the event's row: true when this consumer may send it now.
    async fn claim(
        &self,
        env: &EventEnvelope,
        template: Template,
        replay: bool,
    ) -> Result<bool, NotifyError> {
        let lease_ms = i64::try_from(self.retry.lease().as_millis()).unwrap_or(i64::MAX);
        let claimed: Option<i32> = sqlx::query_scalar(
            "insert into sent_messages (event_id, booking_id, template, status, lease_until)
             values ($1, $2, $3, 'sending', now() + $4 * interval '1 millisecond')
             on conflict (event_id) do update
                set status = 'sending', attempts = sent_messages.attempts + 1,
                    lease_until = excluded.lease_until
              where (sent_messages.status = 'sending' and sent_messages.lease_until < now())
                 or ($5 and sent_messages.status = 'failed')
             returning attempts",
        )
        .bind(env.event_id.0)
        .bind(env.booking_id.0)
        .bind(template.name())
        .bind(lease_ms)
        .bind(replay)
        .fetch_optional(&self.pool)
        .await?;
        if claimed.is_some() {
            return Ok(true);
        }
        let status: Option<String> =
            sqlx::query_scalar("select status from sent_messages where event_id = $1")
                .bind(env.event_id.0)
                .fetch_optional(&self.pool)
                .await?;
        match status.as_deref() {
            Some("sent") | Some("failed") => Ok(false),
            // Another consumer holds the lease right now: come back later.
            _ => Err(NotifyError::Retry(
                "another consumer is sending this event".into(),
            )),
        }
    }

    async fn recipient(&self, env: &EventEnvelope) -> Result<Recipient, NotifyError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "select u.email, u.name from bookings b join users u on u.id = b.user_id
              where b.id = $1",
        )
        .bind(env.booking_id.0)
        .fetch_optional(&self.pool)
        .await?;
        let (email, name) = row.ok_or_else(|| {
            NotifyError::Abort(format!(
                "no user email for booking {} (booking or user missing)",
                env.booking_id
            ))
        })?;
        Ok(Recipient { email, name })
    }

    async fn show(&self, env: &EventEnvelope) -> Result<Option<ShowInfo>, NotifyError> {
        let row: Option<(String, String, String, time::OffsetDateTime)> = sqlx::query_as(
            "select m.title, t.name, t.city, s.starts_at
               from shows s join movies m on m.id = s.movie_id
                    join screens sc on sc.id = s.screen_id
                    join theaters t on t.id = sc.theater_id
              where s.id = $1",
        )
        .bind(env.show_id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(title, theater, city, at)| ShowInfo {
            title,
            theater,
            city,
            starts_at: at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }))
    }

    /// Handles one event. `replay` is set for a message an operator replayed from
    /// the dead-letter queue: an event whose send failed for good is tried again.
    #[tracing::instrument(skip_all, fields(
        booking_id = %env.booking_id,
        event_id = %env.event_id,
        event = env.event.routing_key(),
        trace_id = %env.trace.map(|t| t.trace_id_hex()).unwrap_or_default(),
    ))]
    pub async fn handle(&self, env: &EventEnvelope, replay: bool) -> Result<Outcome, NotifyError> {
        platform::trace::attach(&tracing::Span::current(), env.trace);
        let Some(template) = Template::for_event(&env.event) else {
            return Ok(Outcome::Ignored);
        };
        if !self.claim(env, template, replay).await? {
            metrics::counter!("notifier_sends_total", "template" => template.name(), "outcome" => "duplicate")
                .increment(1);
            tracing::info!("already handled; nothing sent");
            return Ok(Outcome::Duplicate);
        }
        let res = self.send(env, template).await;
        match &res {
            Ok(to) => {
                sqlx::query(
                    "update sent_messages set status = 'sent', sent_at = now(), recipient = $2,
                            last_error = null where event_id = $1",
                )
                .bind(env.event_id.0)
                .bind(to)
                .execute(&self.pool)
                .await?;
                metrics::counter!("notifier_sends_total", "template" => template.name(), "outcome" => "sent")
                    .increment(1);
                tracing::info!(template = template.name(), "email sent");
            }
            Err(NotifyError::Retry(e)) => {
                // Give the lease back so the redelivery may claim it at once.
                drop(
                    sqlx::query(
                        "update sent_messages set lease_until = now(), last_error = $2
                          where event_id = $1 and status = 'sending'",
                    )
                    .bind(env.event_id.0)
                    .bind(e)
                    .execute(&self.pool)
                    .await,
                );
                metrics::counter!("notifier_sends_total", "template" => template.name(), "outcome" => "retry")
                    .increment(1);
            }
            Err(NotifyError::Abort(_)) => {
                metrics::counter!("notifier_sends_total", "template" => template.name(), "outcome" => "failed")
                    .increment(1);
            }
        }
        res.map(|_| Outcome::Sent)
    }

    /// Renders and sends; returns the recipient address.
    async fn send(&self, env: &EventEnvelope, template: Template) -> Result<String, NotifyError> {
        let to = self.recipient(env).await?;
        let show = self.show(env).await?;
        let token = match template {
            Template::Confirmed => TicketClaims::from_confirmed(env).map(|c| self.keys.sign(&c)),
            _ => None,
        };
        let rendered = self
            .templates
            .render(env, &to, show.as_ref(), token.as_deref())
            .map_err(|e| NotifyError::Abort(format!("rendering {}: {e}", template.name())))?
            .ok_or_else(|| NotifyError::Abort("event renders no email".into()))?;
        let event_id = env.event_id.to_string();
        let send = || async {
            let msg = self.mailer.message(&event_id, &to, &rendered)?;
            self.mailer.send(msg).await
        };
        send.retry(
            ExponentialBuilder::default()
                .with_min_delay(self.retry.initial)
                .with_max_delay(self.retry.max)
                .with_max_times(self.retry.attempts_max.saturating_sub(1)),
        )
        .when(|e| matches!(e, SendError::Transient(_)))
        .notify(|e, d| tracing::warn!(error = %e, retry_in = ?d, "smtp send failed; retrying"))
        .await
        .map_err(|e| match e {
            SendError::Transient(e) => NotifyError::Retry(format!("smtp: {e}")),
            SendError::Permanent(e) => NotifyError::Abort(format!("smtp: {e}")),
        })?;
        Ok(to.email)
    }

    /// Records a permanent failure (after the message went to the dead-letter queue).
    async fn mark_failed(&self, event_id: Uuid, reason: &str) {
        let res = sqlx::query(
            "update sent_messages set status = 'failed', last_error = $2 where event_id = $1",
        )
        .bind(event_id)
        .bind(reason)
        .execute(&self.pool)
        .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "recording a failed send failed");
        }
    }

    /// Parks a message in the notifier dead-letter queue with `reason`.
    async fn dead_letter(&self, d: &Delivery, reason: &str) -> Result<(), NotifyError> {
        let mut headers = FieldTable::default();
        headers.insert(
            DEAD_LETTER_REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason.to_owned())),
        );
        headers.insert(
            SOURCE_QUEUE_HEADER.into(),
            AMQPValue::LongString(LongString::from(self.topology.notifier_queue())),
        );
        let id = d
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        self.publisher
            .publish(
                &self.topology.notifier_dlx(),
                "",
                &d.data,
                json_properties(&id, headers),
            )
            .await
            .map_err(|e| NotifyError::Retry(format!("rabbitmq: {e}")))?;
        metrics::counter!("dead_lettered_total", "queue" => "notifier").increment(1);
        tracing::error!(reason, message_id = %id, "email dead-lettered for operators");
        Ok(())
    }
}

fn is_replay(d: &Delivery) -> bool {
    d.properties
        .headers()
        .as_ref()
        .is_some_and(|h| h.inner().contains_key(DEAD_LETTER_REASON_HEADER))
}

/// Handles one delivery and acks, requeues or dead-letters it.
async fn settle(n: &Notifier, d: Delivery) {
    let parsed: Result<EventEnvelope, _> = serde_json::from_slice(&d.data);
    let res = match &parsed {
        Ok(env) => n.handle(env, is_replay(&d)).await,
        Err(e) => Err(NotifyError::Abort(format!("unparseable event: {e}"))),
    };
    match res {
        Ok(_) => drop(d.ack(BasicAckOptions::default()).await),
        Err(NotifyError::Abort(reason)) => {
            if n.dead_letter(&d, &reason).await.is_ok() {
                if let Ok(env) = &parsed {
                    n.mark_failed(env.event_id.0, &reason).await;
                }
                drop(d.ack(BasicAckOptions::default()).await);
            } else {
                drop(
                    d.nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await,
                );
            }
        }
        Err(NotifyError::Retry(e)) => {
            let attempt = platform::amqp::delivery_count(&d);
            let wait = Duration::from_millis(100u64 << attempt.min(6));
            tracing::warn!(error = %e, attempt, retry_in = ?wait, "notification failed; requeueing");
            tokio::time::sleep(wait).await;
            drop(
                d.nack(BasicNackOptions {
                    requeue: true,
                    multiple: false,
                })
                .await,
            );
        }
    }
}

/// Consumes the notifier queue until shutdown, reconnecting after failures.
pub async fn run(
    notifier: Arc<Notifier>,
    amqp_url: String,
    prefetch: u16,
    shutdown: CancellationToken,
) {
    let queue = notifier.topology.notifier_queue();
    loop {
        let res: anyhow::Result<()> = async {
            let conn = platform::amqp::connect(&amqp_url, &format!("notifier-{queue}")).await?;
            let ch = conn.create_channel().await?;
            ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
            let consumer = ch
                .basic_consume(
                    queue.clone().into(),
                    format!("notifier-{}", Uuid::new_v4().simple()).into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            let n = &notifier;
            consumer
                .take_until(shutdown.cancelled())
                .for_each_concurrent(NOTIFIER_CONCURRENCY, |d| async move {
                    if let Ok(d) = d {
                        settle(n, d).await;
                    }
                })
                .await;
            drop(conn.close(200, "notifier stopping".into()).await);
            Ok(())
        }
        .await;
        if shutdown.is_cancelled() {
            return;
        }
        if let Err(e) = res {
            tracing::warn!(queue = %queue, error = %e, "notifier consumer ended; reconnecting");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
