//! Every exchange and queue of the pipeline (declared idempotently by each process
//! at startup), and their removal for tests.

use contracts::Topology;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.to_owned()))
}

/// What the queues of the pipeline are declared with, from `amqp.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueShape {
    /// `x-delivery-limit` of the consumer queues (`amqp.delivery_limit`).
    pub delivery_limit: u32,
    /// `x-quorum-initial-group-size` of every quorum queue
    /// (`amqp.quorum_initial_group_size`): on how many cluster nodes a new queue gets
    /// a replica. 0: not sent, the broker's default (a replica on every node of the
    /// cluster at declaration time). A declare-time argument, not a policy: RabbitMQ
    /// places replicas only when the queue is created (membership changes later go
    /// through `rabbitmq-queues grow/shrink`), and it compares the argument on every
    /// redeclaration, so it must stay the same for a queue's life.
    pub quorum_group_size: u16,
}

impl QueueShape {
    /// A shape with the broker's default placement.
    pub fn with_delivery_limit(delivery_limit: u32) -> Self {
        Self {
            delivery_limit,
            quorum_group_size: 0,
        }
    }
}

/// The arguments of a partition queue: a consumer queue (bounded deliveries, then
/// dead-lettered to the commands DLX) with a single active consumer.
pub fn partition_queue_args(topo: &Topology, shape: QueueShape) -> FieldTable {
    let mut args = consumer_queue_args(&topo.commands_dlx(), shape);
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    args
}

fn quorum_args(shape: QueueShape) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long("quorum"));
    if shape.quorum_group_size > 0 {
        args.insert(
            "x-quorum-initial-group-size".into(),
            AMQPValue::LongInt(i32::from(shape.quorum_group_size)),
        );
    }
    args
}

/// The arguments of a consumer queue (partition, saga, webhooks, notifier): quorum, at most
/// `shape.delivery_limit` deliveries, then dead-lettered (at least once) to `dlx`.
fn consumer_queue_args(dlx: &str, shape: QueueShape) -> FieldTable {
    let delivery_limit = shape.delivery_limit;
    let mut args = quorum_args(shape);
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(i32::try_from(delivery_limit).unwrap_or(i32::MAX)),
    );
    args.insert("x-dead-letter-exchange".into(), long(dlx));
    args.insert("x-dead-letter-strategy".into(), long("at-least-once"));
    args.insert("x-overflow".into(), long("reject-publish"));
    args
}

async fn declare_exchange(
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(name.into(), kind, durable, FieldTable::default())
        .await
}

async fn bind(ch: &Channel, queue: &str, exchange: &str, key: &str) -> Result<(), lapin::Error> {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
}

/// Declares every exchange and queue of the pipeline (idempotent), with the
/// partition queues of `topo`'s layout.
pub async fn declare_topology(
    ch: &Channel,
    topo: &Topology,
    shape: QueueShape,
) -> Result<(), lapin::Error> {
    declare_shared(ch, topo, shape).await?;
    declare_partitions(ch, topo, shape).await
}

/// Declares every exchange and queue of the pipeline but the partition queues.
pub async fn declare_shared(
    ch: &Channel,
    topo: &Topology,
    shape: QueueShape,
) -> Result<(), lapin::Error> {
    declare_exchange(ch, &topo.commands_exchange(), ExchangeKind::Direct).await?;
    declare_exchange(ch, &topo.events_exchange(), ExchangeKind::Topic).await?;
    // Each dead-letter exchange fans out to its one queue, read by operators.
    for (dlx, dlq) in [
        (topo.commands_dlx(), topo.commands_dlq()),
        (topo.payments_dlx(), topo.payments_dlq()),
        (topo.notifier_dlx(), topo.notifier_dlq()),
    ] {
        declare_exchange(ch, &dlx, ExchangeKind::Fanout).await?;
        ch.queue_declare(
            dlq.as_str().into(),
            QueueDeclareOptions::durable(),
            quorum_args(shape),
        )
        .await?;
        bind(ch, &dlq, &dlx, "").await?;
    }
    // The consumers of events: the payment saga (booking events it reacts to, pay
    // requests from ingress, and the gateway's verified webhooks) and the notifier
    // (one email per event it is bound to). They wait on slow dependencies, so they
    // get twice the partitions' delivery limit before the broker dead-letters.
    let consumers: [(String, String, &[&str]); 3] = [
        (
            topo.saga_queue(),
            topo.payments_dlx(),
            &contracts::topology::SAGA_EVENT_KEYS,
        ),
        (topo.webhooks_queue(), topo.payments_dlx(), &[]),
        (
            topo.notifier_queue(),
            topo.notifier_dlx(),
            &contracts::topology::NOTIFIER_EVENT_KEYS,
        ),
    ];
    for (queue, dlx, keys) in consumers {
        ch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::durable(),
            consumer_queue_args(
                &dlx,
                QueueShape {
                    delivery_limit: shape.delivery_limit.saturating_mul(2),
                    ..shape
                },
            ),
        )
        .await?;
        for key in keys {
            bind(ch, &queue, &topo.events_exchange(), key).await?;
        }
    }
    Ok(())
}

/// Declares the partition queues of `topo`'s layout, bound to the commands exchange.
pub async fn declare_partitions(
    ch: &Channel,
    topo: &Topology,
    shape: QueueShape,
) -> Result<(), lapin::Error> {
    for p in topo.all_partitions() {
        ch.queue_declare(
            topo.partition_queue(p).into(),
            QueueDeclareOptions::durable(),
            partition_queue_args(topo, shape),
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
        bind(
            ch,
            &topo.partition_queue(p),
            &topo.commands_exchange(),
            &topo.partition_key(p),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_queue_has_one_active_consumer_bounded_deliveries_and_a_safe_dlx() {
        let topo = Topology::new("t.", 4);
        let args = partition_queue_args(&topo, QueueShape::with_delivery_limit(20));
        let get = |k: &str| args.inner().get(k).cloned();
        assert_eq!(get("x-queue-type"), Some(long("quorum")));
        assert_eq!(
            get("x-single-active-consumer"),
            Some(AMQPValue::Boolean(true))
        );
        assert_eq!(get("x-delivery-limit"), Some(AMQPValue::LongInt(20)));
        assert_eq!(
            get("x-dead-letter-exchange"),
            Some(long(&topo.commands_dlx()))
        );
        assert_eq!(get("x-dead-letter-strategy"), Some(long("at-least-once")));
        assert_eq!(get("x-overflow"), Some(long("reject-publish")));
        assert_eq!(args.inner().len(), 6);
    }

    #[test]
    fn a_cluster_places_each_queue_on_the_configured_number_of_nodes() {
        let topo = Topology::new("t.", 4);
        let shape = QueueShape {
            delivery_limit: 20,
            quorum_group_size: 3,
        };
        let args = partition_queue_args(&topo, shape);
        assert_eq!(
            args.inner().get("x-quorum-initial-group-size"),
            Some(&AMQPValue::LongInt(3))
        );
        assert_eq!(args.inner().len(), 7);
    }
}
