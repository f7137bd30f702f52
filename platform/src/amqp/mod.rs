//! RabbitMQ: connections, the topology, a confirmed publisher, and the one consumer
//! runtime every queue consumer (saga, notifier, any later one) runs on.
//!
//! - [`topology`]: every exchange and queue of the pipeline, declared idempotently.
//! - [`publish`]: [`ConfirmedPublisher`] (waits for broker confirms, reconnects) and
//!   the properties of a persistent JSON message.
//! - [`consume`]: [`consume()`] with a [`Handler`]: decode and handle a delivery, return
//!   `Ok`, [`Failure::Retry`] or [`Failure::Abort`]; one settle policy for all.
//! - [`dead_letter`]: [`dead_letter()`], the one way a message is parked for operators
//!   with its reason and source queue.
//! - [`headers`]: reading AMQP headers (delivery count, strings, numbers, JSON).
//!
//! Broker facts that decide correctness (RabbitMQ 3.10, see ECOSYSTEM.md):
//! - partition queues are quorum queues with `x-single-active-consumer`, so exactly
//!   one runner consumes a partition, and with `x-delivery-limit`, without which a
//!   requeued message goes to the BACK of a quorum queue and per-show order breaks;
//! - dead-lettering from a quorum queue is at-least-once only with
//!   `x-dead-letter-strategy = at-least-once` AND `x-overflow = reject-publish`.

use backon::Retryable;
use lapin::options::QueueDeclareOptions;
use lapin::types::{FieldTable, LongString};
use lapin::{Channel, Connection, ConnectionProperties};
use std::time::Duration;

pub mod consume;
pub mod dead_letter;
pub mod headers;
pub mod publish;
pub mod topology;

pub use consume::{Backoff, ConsumerConfig, Failure, Handler, consume};
pub use dead_letter::{DeadLetterTo, Parcel, dead_letter};
pub use headers::delivery_count;
pub use publish::{ConfirmedPublisher, PublishError, json_properties};
pub use topology::{declare_topology, delete_topology, partition_queue_args};

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
