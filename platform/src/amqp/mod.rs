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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub mod consume;
pub mod dead_letter;
pub mod headers;
pub mod publish;
pub mod tls;
pub mod topology;

pub use consume::{Backoff, ConsumerConfig, Failure, Handler, consume};
pub use dead_letter::{DeadLetterTo, Parcel, dead_letter};
pub use headers::delivery_count;
pub use publish::{ConfirmedPublisher, PublishError, json_properties};
pub use topology::{
    QueueShape, declare_partitions, declare_shared, declare_topology, delete_topology,
    partition_queue_args,
};

/// Longest wait for one broker node to accept a connection (before the next is tried)
/// (a node that is down but not refusing, e.g. behind a dropped route, would otherwise
/// hold the client for the kernel's TCP timeout).
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the next connection starts in a list of nodes: rotating, so the clients of
/// one process spread over a cluster's nodes.
static NEXT_NODE: AtomicUsize = AtomicUsize::new(0);

/// Connects once, to one node of `urls`: one broker URL or a comma-separated list of
/// a cluster's nodes (`amqp.url`; a comma inside a URL must be written `%2C`). The
/// nodes are tried in turn from a rotating start, so a client that lost its node and
/// calls this again connects to another one. Every AMQP client of the project
/// connects through here.
pub async fn connect(urls: &str, name: &str) -> Result<Connection, lapin::Error> {
    connect_within(urls, name, NODE_CONNECT_TIMEOUT).await
}

/// [`connect`], waiting at most `per_node` for each node (a node that accepts TCP but
/// does not answer AMQP, e.g. one still booting or rejoining its cluster, costs
/// that much before the next is tried).
pub async fn connect_within(
    urls: &str,
    name: &str,
    per_node: Duration,
) -> Result<Connection, lapin::Error> {
    let nodes = nodes(urls);
    let props =
        || ConnectionProperties::default().with_connection_name(LongString::from(name.to_owned()));
    let one = |url: &str| {
        let url = url.to_owned();
        let props = props();
        async move {
            let (uri, tls) = tls::split(&url)?;
            let builder = lapin::DefaultConnectionBuilder::new()?
                .with_uri_str(uri)
                .with_properties(props)
                .with_tls_config(tls);
            tokio::time::timeout(per_node, builder.connect())
                .await
                .unwrap_or_else(|_| Err(timed_out(per_node)))
        }
    };
    if nodes.len() <= 1 {
        return one(nodes.first().copied().unwrap_or(urls)).await;
    }
    let start = NEXT_NODE.fetch_add(1, Ordering::Relaxed);
    let mut last = None;
    for i in 0..nodes.len() {
        let url = nodes[(start + i) % nodes.len()];
        let err = match one(url).await {
            Ok(conn) => return Ok(conn),
            Err(e) => e,
        };
        tracing::warn!(node = node_address(url), error = %err, "rabbitmq node unreachable; trying the next");
        last = Some(err);
    }
    Err(last.expect("at least two nodes were tried"))
}

fn timed_out(after: Duration) -> lapin::Error {
    lapin::Error::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {after:?}"),
    ))
}

/// How many nodes `urls` names (at least one).
pub fn node_count(urls: &str) -> usize {
    nodes(urls).len().max(1)
}

/// The node URLs of `urls` (comma-separated, blanks ignored).
fn nodes(urls: &str) -> Vec<&str> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// `host:port` of a node URL, without its credentials (for logs).
fn node_address(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_nodes_splits_on_commas_and_logs_no_credentials() {
        let urls = " amqp://u:p@a:5672/%2f, ,amqps://u:s3cr%2Ct@b:5671/vh ";
        assert_eq!(
            nodes(urls),
            ["amqp://u:p@a:5672/%2f", "amqps://u:s3cr%2Ct@b:5671/vh"]
        );
        assert_eq!(node_address("amqp://u:p@a:5672/%2f"), "a:5672");
        assert_eq!(node_address("amqps://u:p@w@b:5671"), "b:5671");
        assert_eq!(node_address("amqp://c:5672/%2f"), "c:5672");
    }
}
