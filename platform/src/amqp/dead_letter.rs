//! The one way a message is parked for operators: a copy goes to a dead-letter
//! exchange with the reason and the queue it came from (`x-dead-letter-reason`,
//! `x-source-queue`), keeping its id, AMQP type and own headers, so `bookctl dlq`
//! can show why and replay it where it came from.

use super::headers::{with_reason, without_deaths};
use super::publish::{ConfirmedPublisher, PublishError, json_properties};
use lapin::message::Delivery;
use lapin::types::{FieldTable, ShortString};

/// Where the messages a consumer gives up on go.
#[derive(Debug, Clone)]
pub struct DeadLetterTo {
    /// The dead-letter exchange.
    pub exchange: String,
    pub routing_key: String,
    /// Recorded in `x-source-queue`: where a replay sends the message back.
    pub source_queue: String,
    /// The label of `dead_lettered_total` (`("queue", "payments")`,
    /// `("partition", "3")`).
    pub metric_label: (&'static str, String),
}

/// The message to park.
#[derive(Debug, Clone)]
pub struct Parcel<'a> {
    pub message_id: String,
    /// The AMQP type, which some consumers route on (the saga's pay requests).
    pub kind: Option<ShortString>,
    pub headers: FieldTable,
    pub body: &'a [u8],
}

impl<'a> Parcel<'a> {
    /// A delivery as it arrived: its id (a fresh one if it had none), its AMQP type,
    /// its own headers (not the broker's death and redelivery counts) and its body.
    pub fn of(d: &'a Delivery) -> Self {
        Self {
            message_id: d
                .properties
                .message_id()
                .as_ref()
                .map_or_else(|| uuid::Uuid::now_v7().to_string(), |m| m.to_string()),
            kind: d.properties.kind().clone(),
            headers: without_deaths(d.properties.headers().as_ref()),
            body: &d.data,
        }
    }

    /// A message built by the caller (a report for operators, a re-encoded command).
    pub fn new(message_id: String, body: &'a [u8]) -> Self {
        Self {
            message_id,
            kind: None,
            headers: FieldTable::default(),
            body,
        }
    }

    pub fn with_headers(mut self, headers: FieldTable) -> Self {
        self.headers = headers;
        self
    }
}

/// Publishes `parcel` to `to` with `reason` and waits for the broker's confirm. The
/// caller acks the original only after this returned `Ok`.
pub async fn dead_letter(
    publisher: &ConfirmedPublisher,
    to: &DeadLetterTo,
    parcel: Parcel<'_>,
    reason: &str,
) -> Result<(), PublishError> {
    let headers = with_reason(parcel.headers, reason, &to.source_queue);
    let mut props = json_properties(&parcel.message_id, headers);
    if let Some(kind) = parcel.kind {
        props = props.with_type(kind);
    }
    publisher
        .publish(&to.exchange, &to.routing_key, parcel.body, props)
        .await?;
    let (label, value) = &to.metric_label;
    metrics::counter!("dead_lettered_total", *label => value.clone()).increment(1);
    tracing::error!(
        message_id = %parcel.message_id,
        source_queue = %to.source_queue,
        reason,
        "message dead-lettered for operators"
    );
    Ok(())
}
