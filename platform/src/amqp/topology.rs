//! Every exchange and queue of the pipeline (declared idempotently by each process
//! at startup), and their removal for tests.

use contracts::Topology;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

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
