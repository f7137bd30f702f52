//! RabbitMQ: connections, the topology, and a confirmed publisher.
//!
//! Broker facts that decide correctness (RabbitMQ 3.10, see ECOSYSTEM.md):
//! - partition queues are quorum queues with `x-single-active-consumer`, so exactly
//!   one runner consumes a partition, and with `x-delivery-limit`, without which a
//!   requeued message goes to the BACK of a quorum queue and per-show order breaks;
//! - dead-lettering from a quorum queue is at-least-once only with
//!   `x-dead-letter-strategy = at-least-once` AND `x-overflow = reject-publish`.

use backon::Retryable;
use contracts::Topology;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::RwLock;

/// Connects once.
pub async fn connect(url: &str, name: &str) -> Result<Connection, lapin::Error> {
    Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name(LongString::from(name.to_owned())),
    )
    .await
}

/// Connects, retrying with bounded backoff for at most `max_wait`.
pub async fn connect_with_retry(
    url: &str,
    name: &str,
    max_wait: Duration,
) -> Result<Connection, lapin::Error> {
    (|| connect(url, name))
        .retry(crate::startup_backoff(max_wait))
        .notify(|e, d| tracing::warn!(error = %e, retry_in = ?d, "rabbitmq not ready"))
        .await
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.to_owned()))
}

/// The arguments of a partition queue.
pub fn partition_queue_args(topo: &Topology, delivery_limit: u32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long("quorum"));
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(i32::try_from(delivery_limit).unwrap_or(i32::MAX)),
    );
    args.insert("x-dead-letter-exchange".into(), long(&topo.commands_dlx()));
    args.insert("x-dead-letter-strategy".into(), long("at-least-once"));
    args.insert("x-overflow".into(), long("reject-publish"));
    args
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long("quorum"));
    args
}

/// Declares every exchange and queue of the pipeline (idempotent).
pub async fn declare_topology(
    ch: &Channel,
    topo: &Topology,
    delivery_limit: u32,
) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        topo.commands_exchange().into(),
        ExchangeKind::Direct,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        topo.commands_dlx().into(),
        ExchangeKind::Fanout,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        topo.events_exchange().into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        topo.commands_dlq().into(),
        QueueDeclareOptions::durable(),
        quorum_args(),
    )
    .await?;
    ch.queue_bind(
        topo.commands_dlq().into(),
        topo.commands_dlx().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    // The payment saga: its queue takes the booking events it reacts to; what keeps
    // failing, and refunds that failed for good, go to the payments DLQ.
    ch.exchange_declare(
        topo.payments_dlx().into(),
        ExchangeKind::Fanout,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        topo.payments_dlq().into(),
        QueueDeclareOptions::durable(),
        quorum_args(),
    )
    .await?;
    ch.queue_bind(
        topo.payments_dlq().into(),
        topo.payments_dlx().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    for q in [topo.saga_queue(), topo.webhooks_queue()] {
        let mut args = quorum_args();
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(i32::try_from(delivery_limit.saturating_mul(2)).unwrap_or(i32::MAX)),
        );
        args.insert("x-dead-letter-exchange".into(), long(&topo.payments_dlx()));
        args.insert("x-dead-letter-strategy".into(), long("at-least-once"));
        args.insert("x-overflow".into(), long("reject-publish"));
        ch.queue_declare(q.into(), QueueDeclareOptions::durable(), args)
            .await?;
    }
    for key in contracts::topology::SAGA_EVENT_KEYS {
        ch.queue_bind(
            topo.saga_queue().into(),
            topo.events_exchange().into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    // The notifier: one email per event it is bound to; refused-for-good emails and
    // events that kept failing go to its own DLQ.
    ch.exchange_declare(
        topo.notifier_dlx().into(),
        ExchangeKind::Fanout,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        topo.notifier_dlq().into(),
        QueueDeclareOptions::durable(),
        quorum_args(),
    )
    .await?;
    ch.queue_bind(
        topo.notifier_dlq().into(),
        topo.notifier_dlx().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    {
        let mut args = quorum_args();
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(i32::try_from(delivery_limit.saturating_mul(2)).unwrap_or(i32::MAX)),
        );
        args.insert("x-dead-letter-exchange".into(), long(&topo.notifier_dlx()));
        args.insert("x-dead-letter-strategy".into(), long("at-least-once"));
        args.insert("x-overflow".into(), long("reject-publish"));
        ch.queue_declare(
            topo.notifier_queue().into(),
            QueueDeclareOptions::durable(),
            args,
        )
        .await?;
    }
    for key in contracts::topology::NOTIFIER_EVENT_KEYS {
        ch.queue_bind(
            topo.notifier_queue().into(),
            topo.events_exchange().into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    for p in topo.all_partitions() {
        ch.queue_declare(
            topo.partition_queue(p).into(),
            QueueDeclareOptions::durable(),
            partition_queue_args(topo, delivery_limit),
        )
        .await
        .inspect_err(|e| {
            tracing::error!(
                queue = %topo.partition_queue(p),
                error = %e,
                "declaring a partition queue failed; if the broker says PRECONDITION_FAILED, \
                 the queue exists with other arguments (e.g. an older amqp.delivery_limit): \
                 drain and delete it, or keep the old setting"
            );
        })?;
        ch.queue_bind(
            topo.partition_queue(p).into(),
            topo.commands_exchange().into(),
            topo.partition_key(p).into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

/// Deletes every exchange and queue of `topo` (tests clean up their prefix).
pub async fn delete_topology(ch: &Channel, topo: &Topology) -> Result<(), lapin::Error> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    for p in topo.all_partitions() {
        ch.queue_delete(
            topo.partition_queue(p).into(),
            QueueDeleteOptions::default(),
        )
        .await?;
    }
    for q in [
        topo.commands_dlq(),
        topo.saga_queue(),
        topo.webhooks_queue(),
        topo.payments_dlq(),
        topo.notifier_queue(),
        topo.notifier_dlq(),
    ] {
        ch.queue_delete(q.into(), QueueDeleteOptions::default())
            .await?;
    }
    for x in [
        topo.commands_exchange(),
        topo.commands_dlx(),
        topo.events_exchange(),
        topo.payments_dlx(),
        topo.notifier_dlx(),
    ] {
        ch.exchange_delete(x.into(), ExchangeDeleteOptions::default())
            .await?;
    }
    Ok(())
}

/// Message and consumer counts of a queue (passive declare).
pub async fn queue_counts(ch: &Channel, queue: &str) -> Result<(u32, u32), lapin::Error> {
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((q.message_count(), q.consumer_count()))
}

/// How often the broker has delivered `d` before (quorum queues count redeliveries
/// in `x-delivery-count`); 0 on a first delivery.
pub fn delivery_count(d: &lapin::message::Delivery) -> u32 {
    d.properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned())
        .and_then(|v| match v {
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongUInt(n) => Some(n),
            AMQPValue::ShortInt(n) => u32::try_from(n).ok(),
            _ => None,
        })
        .unwrap_or(0)
}

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
}

/// A publisher that waits for broker confirms, spreads publishes over a few
/// channels in confirm mode, and reconnects after the broker went away.
#[derive(Clone)]
pub struct ConfirmedPublisher {
    url: Arc<str>,
    name: Arc<str>,
    channels: usize,
    confirm_timeout: Duration,
    link: Arc<RwLock<Option<Arc<Link>>>>,
    next: Arc<AtomicUsize>,
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
        }
    }

    async fn link(&self) -> Result<Arc<Link>, lapin::Error> {
        if let Some(l) = self.link.read().await.as_ref()
            && l.channels.iter().all(|c| c.status().connected())
        {
            return Ok(l.clone());
        }
        let mut guard = self.link.write().await;
        if let Some(l) = guard.as_ref()
            && l.channels.iter().all(|c| c.status().connected())
        {
            return Ok(l.clone());
        }
        let conn = connect(&self.url, &self.name).await?;
        let mut channels = Vec::with_capacity(self.channels);
        for _ in 0..self.channels {
            let ch = conn.create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            channels.push(ch);
        }
        let l = Arc::new(Link {
            _conn: conn,
            channels,
        });
        *guard = Some(l.clone());
        Ok(l)
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
                self.reset().await;
                return Err(e.into());
            }
        };
        match tokio::time::timeout(self.confirm_timeout, confirm).await {
            Err(_) => Err(PublishError::Timeout(self.confirm_timeout)),
            Ok(Err(e)) => {
                self.reset().await;
                Err(e.into())
            }
            Ok(Ok(c)) if c.is_ack() => Ok(()),
            Ok(Ok(_)) => Err(PublishError::Nacked),
        }
    }

    async fn reset(&self) {
        *self.link.write().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
