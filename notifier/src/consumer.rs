//! The consumer: booking events in, one email each out, and one SMS when the buyer
//! asked for SMS and has a verified phone ([`crate::sms`]).
//!
//! Idempotent by event id and channel: a `sent_messages` row per (event, channel)
//! is claimed before the send and finalised after it, so a redelivered event sends
//! nothing more, and an email sent is not sent again when only its SMS is retried. A transient SMTP
//! failure (4xx, connection, timeout) is retried in-process with backoff, then the
//! event is requeued (bounded by the queue's delivery limit, past which the broker
//! dead-letters it); a permanent one (5xx, a bad address) goes to the notifier
//! dead-letter queue with the reason and is recorded as failed.
//!
//! The queue plumbing (connection, prefetch, concurrency, settling, dead-lettering)
//! is `platform::amqp::consume`; this file keeps only the notifier's own steps, as
//! `impl Handler for Notifier`.

use crate::mail::{Mailer, Recipient, SendError, ShowInfo, Template, Templates};
use crate::record::{Faults, Unrecorded, until_recorded};
use crate::sms::{Channel, Reach};
use backon::{ExponentialBuilder, Retryable};
use contracts::topology::DEAD_LETTER_REASON_HEADER;
use contracts::{EventEnvelope, Topology};
use lapin::message::Delivery;
use platform::amqp::{Backoff, ConsumerConfig, DeadLetterTo, Failure, Handler};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tickets::{TicketClaims, TicketKeys};
use uuid::Uuid;

/// Extra lease time beyond the worst-case send, for the database round trips.
const LEASE_SLACK: Duration = Duration::from_secs(30);

/// How long after another consumer's lease ends its event is looked at again.
const LEASE_RECHECK: Duration = Duration::from_millis(200);

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
    pub mailer: Mailer,
    pub templates: Templates,
    pub keys: TicketKeys,
    pub retry: RetryPolicy,
    /// Sends made but not yet recorded ([`crate::record`]).
    pub unrecorded: Unrecorded,
    /// The same, for SMS.
    pub unrecorded_sms: Unrecorded,
    pub faults: Arc<Faults>,
    /// The SMS provider (`None`: no SMS are sent).
    pub sms: Option<platform::sms::SmsClient>,
}

impl Notifier {
    pub fn from_settings(
        s: &platform::Settings,
        pool: PgPool,
        faults: Arc<Faults>,
    ) -> anyhow::Result<Self> {
        let n = &s.notifier;
        Ok(Self {
            pool,
            topology: s.topology(),
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
            unrecorded: Unrecorded::default(),
            unrecorded_sms: Unrecorded::default(),
            faults,
            sms: platform::sms::SmsClient::from_settings(n)?,
        })
    }

    /// Records the send of `event` on `channel` to `to` (one attempt).
    async fn record_sent(&self, event: Uuid, channel: Channel, to: &str) -> Result<(), String> {
        if self.faults.take_record_failure() {
            return Err("injected fault: recording the send failed".into());
        }
        sqlx::query(
            "update sent_messages set status = 'sent', sent_at = now(), recipient = $2,
                    last_error = null where event_id = $1 and channel = $3",
        )
        .bind(event)
        .bind(to)
        .bind(channel.name())
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(|e| format!("postgres: {e}"))
    }

    /// Claims the event's row of `channel`: true when this consumer may send it now.
    async fn claim(
        &self,
        env: &EventEnvelope,
        template: Template,
        channel: Channel,
        replay: bool,
    ) -> Result<bool, Failure> {
        let lease_ms = i64::try_from(self.retry.lease().as_millis()).unwrap_or(i64::MAX);
        let claimed: Option<i32> = sqlx::query_scalar(
            "insert into sent_messages (event_id, booking_id, template, status, lease_until, channel)
             values ($1, $2, $3, 'sending', now() + $4 * interval '1 millisecond', $6)
             on conflict (event_id, channel) do update
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
        .bind(channel.name())
        .fetch_optional(&self.pool)
        .await?;
        if claimed.is_some() {
            return Ok(true);
        }
        let row: Option<(String, i64)> = sqlx::query_as(
            "select status,
                    greatest(0, ceil(extract(epoch from (lease_until - now())) * 1000))::int8
               from sent_messages where event_id = $1 and channel = $2",
        )
        .bind(env.event_id.0)
        .bind(channel.name())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some((status, _)) if status == "sent" || status == "failed" => Ok(false),
            // Another consumer holds the lease: it is sending now, or it died while
            // sending. Either way the event is its own until the lease ends; come back
            // then, not on the backoff, which would spend the delivery limit first and
            // dead-letter an email whose sender was only killed.
            Some((_, left_ms)) => Err(Failure::NotBefore(
                Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)) + LEASE_RECHECK,
                "another consumer holds this event's send lease".into(),
            )),
            None => Err(Failure::Retry(
                "the event's send row vanished between claim and look".into(),
            )),
        }
    }

    /// Whether a reminder ([`contracts::Event::ShowReminder`]) is still worth sending
    /// as it was made: its booking still confirmed, its show not cancelled, not
    /// begun, and starting when the reminder says (a show moved since gets a
    /// reminder for its new time). The sweep checked this when it made the
    /// reminder; this is for what changed while it waited in the queue.
    async fn reminder_still_due(&self, env: &EventEnvelope) -> Result<bool, Failure> {
        let contracts::Event::ShowReminder { starts_at, .. } = &env.event else {
            return Ok(true);
        };
        let row: Option<(bool, time::OffsetDateTime)> = sqlx::query_as(
            "select b.status = 'confirmed' and s.status <> 'cancelled' and s.starts_at > now(),
                    s.starts_at
               from bookings b join shows s on s.id = b.show_id
              where b.id = $1",
        )
        .bind(env.booking_id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some_and(|(due, at)| due && platform::millis_of(at) == *starts_at))
    }

    /// The channels the booking's account is reached by ([`Reach`]).
    async fn reach(&self, env: &EventEnvelope) -> Result<Reach, Failure> {
        let row: Option<(Option<serde_json::Value>, Option<String>)> = sqlx::query_as(
            "select u.preferences->'notify',
                    case when u.phone_verified_at is not null then u.phone end
               from bookings b join users u on u.id = b.user_id
              where b.id = $1",
        )
        .bind(env.booking_id.0)
        .fetch_optional(&self.pool)
        .await?;
        // No booking or user: the email step says so (and aborts).
        let (notify, phone) = row.unwrap_or_default();
        Ok(Reach::new(notify.as_ref(), phone, self.sms.is_some()))
    }

    async fn recipient(&self, env: &EventEnvelope) -> Result<Recipient, Failure> {
        let row: Option<(String, String)> = sqlx::query_as(
            "select u.email, u.name from bookings b join users u on u.id = b.user_id
              where b.id = $1",
        )
        .bind(env.booking_id.0)
        .fetch_optional(&self.pool)
        .await?;
        let (email, name) = row.ok_or_else(|| {
            Failure::Abort(format!(
                "no user email for booking {} (booking or user missing)",
                env.booking_id
            ))
        })?;
        Ok(Recipient { email, name })
    }

    async fn show(&self, env: &EventEnvelope) -> Result<Option<ShowInfo>, Failure> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            time::OffsetDateTime,
        );
        let row: Option<Row> = sqlx::query_as(
            "select m.title, t.name, t.address, t.city, t.time_zone, sc.name, s.starts_at
               from shows s join movies m on m.id = s.movie_id
                    join screens sc on sc.id = s.screen_id
                    join theaters t on t.id = sc.theater_id
              where s.id = $1",
        )
        .bind(env.show_id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(title, theater, address, city, zone, screen, at)| ShowInfo {
                title,
                theater,
                address,
                city,
                screen,
                starts_at: at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                starts_at_local: platform::localtime::local_human(at, &zone),
            },
        ))
    }

    /// Handles one event. `replay` is set for a message an operator replayed from
    /// the dead-letter queue: an event whose send failed for good is tried again.
    #[tracing::instrument(skip_all, fields(
        booking_id = %env.booking_id,
        event_id = %env.event_id,
        event = env.event.routing_key(),
        trace_id = %env.trace.map(|t| t.trace_id_hex()).unwrap_or_default(),
    ))]
    pub async fn handle_event(
        &self,
        env: &EventEnvelope,
        replay: bool,
    ) -> Result<Outcome, Failure> {
        platform::trace::attach(&tracing::Span::current(), env.trace);
        let Some(template) = Template::for_event(&env.event) else {
            return Ok(Outcome::Ignored);
        };
        if template == Template::Reminder && !self.reminder_still_due(env).await? {
            metrics::counter!("notifier_reminders_dropped_total").increment(1);
            tracing::info!(
                "reminder not sent: the booking is no longer confirmed, or its show was \
                 cancelled, moved or has begun"
            );
            return Ok(Outcome::Ignored);
        }
        let reach = if crate::sms::has_sms(template) && self.sms.is_some() {
            self.reach(env).await?
        } else {
            Reach {
                email: true,
                sms_to: None,
            }
        };
        let mut outcome = Outcome::Duplicate;
        let mut failure: Option<Failure> = None;
        let channels = [
            reach.email.then_some((Channel::Email, None)),
            reach.sms_to.map(|to| (Channel::Sms, Some(to))),
        ];
        for (channel, phone) in channels.into_iter().flatten() {
            match self
                .deliver(env, template, channel, phone.as_deref(), replay)
                .await
            {
                Ok(Outcome::Sent) => outcome = Outcome::Sent,
                Ok(_) => {}
                Err(Failure::Abort(reason)) => {
                    // This channel failed for good; the other still goes (or is
                    // retried) on its own.
                    self.mark_failed(env.event_id.0, Some(channel), &reason)
                        .await;
                    if failure.is_none() {
                        failure = Some(Failure::Abort(reason));
                    }
                }
                // A retry wins over an abort: the aborted channel is recorded failed
                // (not sent again), the other is tried again.
                Err(f) => {
                    if !matches!(failure, Some(Failure::Retry(_))) {
                        failure = Some(f);
                    }
                }
            }
        }
        match failure {
            Some(f) => Err(f),
            None => Ok(outcome),
        }
    }

    /// Claims, sends and records one channel of the event (`phone`: the SMS's).
    async fn deliver(
        &self,
        env: &EventEnvelope,
        template: Template,
        channel: Channel,
        phone: Option<&str>,
        replay: bool,
    ) -> Result<Outcome, Failure> {
        let metric = match channel {
            Channel::Email => "notifier_sends_total",
            Channel::Sms => "notifier_sms_sends_total",
        };
        let unrecorded = match channel {
            Channel::Email => &self.unrecorded,
            Channel::Sms => &self.unrecorded_sms,
        };
        // Sent by this process earlier, but not recorded (PostgreSQL was down):
        // record it now; sending again would repeat the message.
        if let Some(to) = unrecorded.get(env.event_id.0) {
            self.record_sent(env.event_id.0, channel, &to)
                .await
                .map_err(Failure::Retry)?;
            unrecorded.remove(env.event_id.0);
            metrics::counter!(metric, "template" => template.name(), "outcome" => "recorded_late")
                .increment(1);
            tracing::info!(
                channel = channel.name(),
                "a send made earlier is recorded; nothing sent again"
            );
            return Ok(Outcome::Duplicate);
        }
        let claimed_at = Instant::now();
        if !self.claim(env, template, channel, replay).await? {
            metrics::counter!(metric, "template" => template.name(), "outcome" => "duplicate")
                .increment(1);
            tracing::info!(channel = channel.name(), "already handled; nothing sent");
            return Ok(Outcome::Duplicate);
        }
        let res = match (channel, phone) {
            (Channel::Sms, Some(to)) => self.send_sms(env, template, to).await,
            _ => self.send(env, template).await,
        };
        match &res {
            Ok(to) => {
                // Retried while the claim's lease holds (nobody else may send it).
                let sent_at = Instant::now();
                let deadline = claimed_at + self.retry.lease() - LEASE_SLACK / 2;
                let recorded =
                    until_recorded(deadline, || self.record_sent(env.event_id.0, channel, to))
                        .await;
                metrics::histogram!("notifier_record_seconds")
                    .record(sent_at.elapsed().as_secs_f64());
                if let Err(e) = recorded {
                    unrecorded.insert(env.event_id.0, to);
                    metrics::counter!("notifier_unrecorded_sends_total").increment(1);
                    return Err(Failure::Retry(format!(
                        "the {} was sent, but recording it failed: {e}",
                        channel.name()
                    )));
                }
                metrics::counter!(metric, "template" => template.name(), "outcome" => "sent")
                    .increment(1);
                // One message per channel: operators (and the logs test) follow a
                // booking to its "email sent".
                match channel {
                    Channel::Email => {
                        tracing::info!(
                            template = template.name(),
                            channel = channel.name(),
                            "email sent"
                        );
                    }
                    Channel::Sms => {
                        tracing::info!(
                            template = template.name(),
                            channel = channel.name(),
                            "sms sent"
                        );
                    }
                }
            }
            Err(Failure::Retry(e)) => {
                // Give the lease back so the redelivery may claim it at once.
                drop(
                    sqlx::query(
                        "update sent_messages set lease_until = now(), last_error = $2
                          where event_id = $1 and channel = $3 and status = 'sending'",
                    )
                    .bind(env.event_id.0)
                    .bind(e)
                    .bind(channel.name())
                    .execute(&self.pool)
                    .await,
                );
                metrics::counter!(metric, "template" => template.name(), "outcome" => "retry")
                    .increment(1);
            }
            Err(Failure::NotBefore(..)) => {
                metrics::counter!(metric, "template" => template.name(), "outcome" => "retry")
                    .increment(1);
            }
            Err(Failure::Abort(_)) => {
                metrics::counter!(metric, "template" => template.name(), "outcome" => "failed")
                    .increment(1);
            }
        }
        res.map(|_| Outcome::Sent)
    }

    /// Sends the event's SMS to `phone`, retrying a transient failure in-process
    /// like an email; returns the phone.
    async fn send_sms(
        &self,
        env: &EventEnvelope,
        template: Template,
        phone: &str,
    ) -> Result<String, Failure> {
        let Some(client) = &self.sms else {
            return Err(Failure::Abort("no SMS provider is configured".into()));
        };
        let show = self.show(env).await?;
        let body = crate::sms::text(env, template, show.as_ref())
            .ok_or_else(|| Failure::Abort("event has no SMS".into()))?;
        let send = || client.send(phone, &body);
        send.retry(
            ExponentialBuilder::default()
                .with_min_delay(self.retry.initial)
                .with_max_delay(self.retry.max)
                .with_max_times(self.retry.attempts_max.saturating_sub(1)),
        )
        .when(|e| matches!(e, platform::sms::SmsError::Transient(_)))
        .notify(|e, d| tracing::warn!(error = %e, retry_in = ?d, "sms send failed; retrying"))
        .await
        .map_err(|e| match e {
            platform::sms::SmsError::Transient(e) => Failure::Retry(format!("sms: {e}")),
            platform::sms::SmsError::Permanent(e) => Failure::Abort(format!("sms: {e}")),
        })?;
        Ok(phone.to_owned())
    }

    /// Renders and sends; returns the recipient address.
    async fn send(&self, env: &EventEnvelope, template: Template) -> Result<String, Failure> {
        let to = self.recipient(env).await?;
        let show = self.show(env).await?;
        let token = match template {
            Template::Confirmed => TicketClaims::from_confirmed(env).map(|c| self.keys.sign(&c)),
            _ => None,
        };
        let rendered = self
            .templates
            .render(env, &to, show.as_ref(), token.as_deref())
            .map_err(|e| Failure::Abort(format!("rendering {}: {e}", template.name())))?
            .ok_or_else(|| Failure::Abort("event renders no email".into()))?;
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
            SendError::Transient(e) => Failure::Retry(format!("smtp: {e}")),
            SendError::Permanent(e) => Failure::Abort(format!("smtp: {e}")),
        })?;
        Ok(to.email)
    }

    /// Records a permanent failure of one channel, or (`None`, after the message
    /// went to the dead-letter queue) of every channel not sent.
    async fn mark_failed(&self, event_id: Uuid, channel: Option<Channel>, reason: &str) {
        let res = sqlx::query(
            "update sent_messages set status = 'failed', last_error = $2
              where event_id = $1 and status <> 'sent' and ($3::text is null or channel = $3)",
        )
        .bind(event_id)
        .bind(reason)
        .bind(channel.map(Channel::name))
        .execute(&self.pool)
        .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "recording a failed send failed");
        }
    }
}

fn is_replay(d: &Delivery) -> bool {
    d.properties
        .headers()
        .as_ref()
        .is_some_and(|h| h.inner().contains_key(DEAD_LETTER_REASON_HEADER))
}

impl Handler for Notifier {
    async fn handle(&self, d: &Delivery) -> Result<(), Failure> {
        let env: EventEnvelope = serde_json::from_slice(&d.data)
            .map_err(|e| Failure::Abort(format!("unparseable event: {e}")))?;
        self.handle_event(&env, is_replay(d)).await.map(drop)
    }

    /// The event went to the dead-letter queue: record the send as failed for good.
    async fn on_abort(&self, d: &Delivery, reason: &str) {
        if let Ok(env) = serde_json::from_slice::<EventEnvelope>(&d.data) {
            self.mark_failed(env.event_id.0, None, reason).await;
        }
    }
}

/// How the notifier queue is consumed (by [`platform::amqp::consume`] with a
/// [`Notifier`]), from the `notifier` settings.
pub fn consumer_config(s: &platform::Settings) -> ConsumerConfig {
    let topo = s.topology();
    let n = &s.notifier;
    ConsumerConfig {
        name: "notifier".into(),
        queue: topo.notifier_queue(),
        prefetch: n.prefetch,
        concurrency: n.concurrency,
        requeue_backoff: Backoff {
            initial: Duration::from_millis(n.requeue_initial_ms),
            max: Duration::from_millis(n.requeue_max_ms),
        },
        dead_letter: DeadLetterTo {
            exchange: topo.notifier_dlx(),
            routing_key: String::new(),
            source_queue: topo.notifier_queue(),
            metric_label: ("queue", "notifier".into()),
        },
    }
}
