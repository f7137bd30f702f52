//! Publishing with broker confirms, and the properties of a persistent JSON message.

use super::{connect_within, node_count};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Why a publish did not get a positive confirm.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("rabbitmq: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("no publisher confirm within {0:?}")]
    Timeout(Duration),
    /// Refused before sending: headers this large would exceed the broker's frame
    /// size, and the broker answers that by closing the whole connection (every
    /// channel of every other publish with it).
    #[error("message headers of about {0} bytes exceed {HEADERS_MAX_BYTES}")]
    HeadersTooLarge(usize),
    /// The connection is down and the last attempt to reconnect failed moments ago:
    /// the caller is answered at once rather than queued behind another attempt.
    #[error("rabbitmq is unreachable; reconnecting (next attempt within {0:?})")]
    Reconnecting(Duration),
    /// A command whose partition layout could not be known, or changed before its
    /// confirm (see `crate::layout`): not accepted, a retry routes it anew.
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
}

/// Pause after a failed reconnect before the next attempt, doubled per failure up to
/// [`RECONNECT_PAUSE_MAX`]: short, so that the publisher is back within a second of
/// the broker, and publishes meanwhile fail fast instead of each waiting out a
/// connection attempt.
const RECONNECT_PAUSE_MIN: Duration = Duration::from_millis(100);
const RECONNECT_PAUSE_MAX: Duration = Duration::from_secs(1);

/// Longest wait for one node in a connection attempt of a publisher (a node that
/// accepts TCP but does not answer AMQP would otherwise hold every publish behind
/// it). The attempt as a whole may try every node of the list, so it is bounded by
/// this times the number of nodes, plus [`PUBLISHER_SETUP_TIMEOUT`] for the channels.
const PUBLISHER_NODE_TIMEOUT: Duration = Duration::from_secs(2);
const PUBLISHER_SETUP_TIMEOUT: Duration = Duration::from_secs(3);

/// The publisher's view of its connection, for fail-fast and the metrics.
#[derive(Debug)]
struct Health {
    /// When the connection was found lost (or the first attempt failed).
    down_since: Option<Instant>,
    /// No new attempt before this.
    next_attempt: Option<Instant>,
    pause: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            down_since: None,
            next_attempt: None,
            pause: RECONNECT_PAUSE_MIN,
        }
    }
}

/// Largest encoded size of a message's headers the publisher sends (RabbitMQ's
/// default frame is 128 KiB, and the whole content header must fit in one frame).
pub const HEADERS_MAX_BYTES: usize = 16 * 1024;

/// About the encoded size of `table` in bytes (an upper bound for the value kinds
/// we send: strings, numbers, nested tables and arrays).
fn table_size(table: &FieldTable) -> usize {
    table
        .inner()
        .iter()
        .map(|(k, v)| 1 + k.as_str().len() + 1 + value_size(v))
        .sum::<usize>()
        + 4
}

fn value_size(v: &AMQPValue) -> usize {
    match v {
        AMQPValue::LongString(s) => 4 + s.as_bytes().len(),
        AMQPValue::ShortString(s) => 1 + s.as_str().len(),
        AMQPValue::FieldTable(t) => table_size(t),
        AMQPValue::FieldArray(a) => {
            4 + a
                .as_slice()
                .iter()
                .map(|v| 1 + value_size(v))
                .sum::<usize>()
        }
        AMQPValue::ByteArray(b) => 4 + b.as_slice().len(),
        _ => 9,
    }
}

/// Properties of a persistent JSON message. Published while traced work is in
/// progress ([`crate::trace::scope`]), it carries that `traceparent` unless
/// `headers` already name one.
pub fn json_properties(message_id: &str, mut headers: FieldTable) -> BasicProperties {
    if !headers
        .inner()
        .contains_key(contracts::trace::TRACEPARENT_HEADER)
    {
        crate::trace::add_header(&mut headers, crate::trace::current());
    }
    BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_delivery_mode(2)
        .with_message_id(ShortString::from(message_id.to_owned()))
        .with_timestamp(u64::try_from(crate::now_millis().0 / 1000).unwrap_or(0))
        .with_headers(headers)
}

struct Link {
    _conn: Connection,
    channels: Vec<Channel>,
    opened: Instant,
}

/// A link that saw a nack is replaced once it is this old (a nack there may be a
/// channel stuck on a queue leader that is gone, see [`ConfirmedPublisher::publish`];
/// at most one new connection per this much time, whatever the rate of nacks).
const NACK_RESET_AFTER: Duration = Duration::from_secs(1);

/// A publisher that waits for broker confirms, spreads publishes over a few
/// channels in confirm mode, and reconnects after the broker went away.
///
/// Reconnection: the first publish after the connection is lost tries to connect
/// (bounded by [`PUBLISHER_NODE_TIMEOUT`] per node of the list); after a failed attempt, publishes fail
/// at once ([`PublishError::Reconnecting`]: ingress answers `503` with
/// `Retry-After`) until the next attempt is due, 100 ms later doubling to 1 s. So
/// the publisher is back within about a second of the broker, and nobody hangs.
/// Measured: `amqp_publisher_connect_failures_total{name}`,
/// `amqp_publisher_reconnects_total{name}` and `amqp_publisher_down_seconds{name}`
/// (from the loss to the new connection).
#[derive(Clone)]
pub struct ConfirmedPublisher {
    url: Arc<str>,
    name: Arc<str>,
    channels: usize,
    confirm_timeout: Duration,
    link: Arc<RwLock<Option<Arc<Link>>>>,
    next: Arc<AtomicUsize>,
    health: Arc<Mutex<Health>>,
}

impl ConfirmedPublisher {
    pub fn new(url: &str, name: &str, channels: usize, confirm_timeout: Duration) -> Self {
        Self {
            url: url.into(),
            name: name.into(),
            channels: channels.max(1),
            confirm_timeout,
            link: Arc::new(RwLock::new(None)),
            next: Arc::new(AtomicUsize::new(0)),
            health: Arc::new(Mutex::new(Health::default())),
        }
    }

    /// Notes that the connection is down (the loss, or a failed attempt).
    fn mark_down(&self) {
        if let Ok(mut h) = self.health.lock() {
            h.down_since.get_or_insert_with(Instant::now);
        }
    }

    /// `Err` while a failed attempt was too recent to try again.
    fn may_attempt(&self) -> Result<(), PublishError> {
        let h = self
            .health
            .lock()
            .map_err(|_| PublishError::Reconnecting(Duration::ZERO))?;
        match h.next_attempt {
            Some(at) if at > Instant::now() => Err(PublishError::Reconnecting(h.pause)),
            _ => Ok(()),
        }
    }

    fn attempt_failed(&self) {
        metrics::counter!("amqp_publisher_connect_failures_total", "name" => self.name.to_string())
            .increment(1);
        if let Ok(mut h) = self.health.lock() {
            h.down_since.get_or_insert_with(Instant::now);
            h.next_attempt = Some(Instant::now() + h.pause);
            h.pause = (h.pause * 2).min(RECONNECT_PAUSE_MAX);
        }
    }

    fn connected(&self) {
        let Ok(mut h) = self.health.lock() else {
            return;
        };
        if let Some(since) = h.down_since {
            let down = since.elapsed();
            metrics::counter!("amqp_publisher_reconnects_total", "name" => self.name.to_string())
                .increment(1);
            metrics::histogram!("amqp_publisher_down_seconds", "name" => self.name.to_string())
                .record(down.as_secs_f64());
            tracing::info!(
                publisher = %self.name,
                down_ms = u64::try_from(down.as_millis()).unwrap_or(u64::MAX),
                "rabbitmq publisher reconnected"
            );
        }
        *h = Health::default();
    }

    async fn link(&self) -> Result<Arc<Link>, PublishError> {
        if let Some(l) = self.link.read().await.as_ref()
            && l.channels.iter().all(|c| c.status().connected())
        {
            return Ok(l.clone());
        }
        self.may_attempt()?;
        let mut guard = self.link.write().await;
        if let Some(l) = guard.as_ref()
            && l.channels.iter().all(|c| c.status().connected())
        {
            return Ok(l.clone());
        }
        if guard.take().is_some() {
            self.mark_down();
        }
        // Waited for the lock behind a failed attempt: do not make another one now.
        self.may_attempt()?;
        let within = PUBLISHER_NODE_TIMEOUT * u32::try_from(node_count(&self.url)).unwrap_or(1)
            + PUBLISHER_SETUP_TIMEOUT;
        let link = tokio::time::timeout(within, self.open())
            .await
            .unwrap_or_else(|_| {
                Err(lapin::Error::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {within:?}"),
                )))
            });
        match link {
            Ok(l) => {
                self.connected();
                *guard = Some(l.clone());
                Ok(l)
            }
            Err(e) => {
                self.attempt_failed();
                Err(e.into())
            }
        }
    }

    async fn open(&self) -> Result<Arc<Link>, lapin::Error> {
        let conn = connect_within(&self.url, &self.name, PUBLISHER_NODE_TIMEOUT).await?;
        let mut channels = Vec::with_capacity(self.channels);
        for _ in 0..self.channels {
            let ch = conn.create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            channels.push(ch);
        }
        Ok(Arc::new(Link {
            _conn: conn,
            channels,
            opened: Instant::now(),
        }))
    }

    /// Whether the broker connection is up (for readiness).
    pub async fn is_connected(&self) -> bool {
        self.link().await.is_ok()
    }

    /// Publishes one message and returns once the broker has confirmed it.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        props: BasicProperties,
    ) -> Result<(), PublishError> {
        let headers = props.headers().as_ref().map_or(0, table_size);
        if headers > HEADERS_MAX_BYTES {
            return Err(PublishError::HeadersTooLarge(headers));
        }
        let link = self.link().await?;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % link.channels.len();
        let ch = &link.channels[i];
        let confirm = ch
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                payload,
                props,
            )
            .await;
        let confirm = match confirm {
            Ok(c) => c,
            Err(e) => {
                self.reset(&link).await;
                return Err(e.into());
            }
        };
        match tokio::time::timeout(self.confirm_timeout, confirm).await {
            Err(_) => {
                // A channel whose confirm never came may be stuck behind a cluster
                // node that went away (the queue's leader, or the node itself, not yet
                // noticed): the next publish opens a new connection, to whichever node
                // answers. The caller retries this one; its message id makes a
                // duplicate harmless.
                self.reset(&link).await;
                Err(PublishError::Timeout(self.confirm_timeout))
            }
            Ok(Err(e)) => {
                self.reset(&link).await;
                Err(e.into())
            }
            Ok(Ok(c)) if c.is_ack() => Ok(()),
            Ok(Ok(_)) => {
                // A quorum queue's client in a channel starts from the leader the
                // queue's record names; when that node is down (a leader lost, the
                // record not yet updated), RabbitMQ 3.10 answers every publish of
                // that channel to that queue with a nack for as long as the node
                // stays down (`rabbit_fifo_client:enqueue` asks the node it picked,
                // gets `nodedown`, and keeps no new leader). New channels start from
                // the record again, which names the new leader once one is elected.
                // The caller retries this one.
                metrics::counter!("amqp_publisher_nacks_total", "name" => self.name.to_string())
                    .increment(1);
                if link.opened.elapsed() >= NACK_RESET_AFTER {
                    tracing::warn!(
                        publisher = %self.name,
                        exchange,
                        routing_key,
                        "rabbitmq nacked a publish; opening new channels"
                    );
                    self.reset(&link).await;
                }
                Err(PublishError::Nacked)
            }
        }
    }

    /// Drops `failed` so that the next publish opens a new connection (not a newer
    /// link another publish has made meanwhile).
    async fn reset(&self, failed: &Arc<Link>) {
        let mut guard = self.link.write().await;
        if guard.as_ref().is_some_and(|l| Arc::ptr_eq(l, failed)) {
            *guard = None;
            drop(guard);
            self.mark_down();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::LongString;

    #[tokio::test]
    async fn oversized_headers_are_refused_before_anything_is_sent() {
        // Nothing listens on port 1: reaching the broker would fail differently.
        let publisher =
            ConfirmedPublisher::new("amqp://127.0.0.1:1/%2f", "t", 1, Duration::from_secs(1));
        let mut headers = FieldTable::default();
        headers.insert(
            contracts::topology::REQUEST_ID_HEADER.into(),
            AMQPValue::LongString(LongString::from("x".repeat(200_000))),
        );
        let err = publisher
            .publish("ex", "rk", b"{}", json_properties("m1", headers))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PublishError::HeadersTooLarge(n) if n > 200_000),
            "{err}"
        );
        let mut small = FieldTable::default();
        small.insert(
            contracts::topology::REQUEST_ID_HEADER.into(),
            AMQPValue::LongString(LongString::from("x".repeat(128))),
        );
        assert!(table_size(&small) < HEADERS_MAX_BYTES);
    }
}
