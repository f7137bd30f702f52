//! Publishing with broker confirms, and the properties of a persistent JSON message.

use super::connect;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
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
