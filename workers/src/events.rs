//! Publishing committed events. The runner hands each batch's outbox rows to the
//! [`EventPublisher`] task; whatever a crash left unpublished, the relay picks up.
//! Consumers dedupe by event id: delivery is at least once.

use lapin::types::FieldTable;
use platform::amqp::{ConfirmedPublisher, json_properties};
use sequencer_store::OutboxRow;
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn trace_header(r: &OutboxRow) -> FieldTable {
    let mut headers = FieldTable::default();
    platform::trace::add_header(&mut headers, r.trace);
    headers
}

/// Publishes rows with confirms, then deletes them from the outbox.
pub(crate) async fn publish_rows(
    pool: &PgPool,
    publisher: &ConfirmedPublisher,
    rows: &[OutboxRow],
) -> anyhow::Result<()> {
    let published = futures::future::join_all(rows.iter().map(|r| async move {
        publisher
            .publish(
                &r.exchange,
                &r.routing_key,
                &r.payload,
                json_properties(&r.event_id.to_string(), trace_header(r)),
            )
            .await
            .map(|()| r.id)
    }))
    .await;
    let mut done = Vec::with_capacity(rows.len());
    let mut first_err = None;
    for p in published {
        match p {
            Ok(id) => done.push(id),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if !done.is_empty() {
        sqlx::query("delete from outbox where id = any($1)")
            .bind(&done)
            .execute(pool)
            .await?;
    }
    metrics::counter!("events_published_total").increment(done.len() as u64);
    match first_err {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The task that publishes what runners committed.
pub async fn run_publisher(
    pool: PgPool,
    publisher: ConfirmedPublisher,
    mut rx: mpsc::Receiver<Vec<OutboxRow>>,
) {
    while let Some(rows) = rx.recv().await {
        if let Err(e) = publish_rows(&pool, &publisher, &rows).await {
            tracing::warn!(error = %e, "event publish failed; the outbox relay will retry");
        }
    }
}

/// An outbox row as the relay reads it: id, event id, exchange, routing key, payload.
type RelayRow = (i64, uuid::Uuid, String, String, serde_json::Value);

/// Periodically publishes outbox rows older than `grace` (left by a crash or a
/// failed publish).
pub async fn run_relay(
    pool: PgPool,
    publisher: ConfirmedPublisher,
    every: Duration,
    grace: Duration,
    shutdown: CancellationToken,
) {
    /// Most rows relayed per round.
    const RELAY_BATCH_MAX: i64 = 1000;
    let mut ticks = platform::every(every, &shutdown);
    while ticks.tick().await {
        let rows: Result<Vec<RelayRow>, _> = sqlx::query_as(
            "select id, event_id, exchange, routing_key, payload from outbox
                  where created_at < now() - make_interval(secs => $1)
                  order by id limit $2",
        )
        .bind(grace.as_secs_f64())
        .bind(RELAY_BATCH_MAX)
        .fetch_all(&pool)
        .await;
        match rows {
            Ok(rows) if !rows.is_empty() => {
                let rows: Vec<OutboxRow> = rows
                    .into_iter()
                    .map(|(id, event_id, exchange, routing_key, payload)| OutboxRow {
                        id,
                        exchange,
                        routing_key,
                        trace: payload["trace"]
                            .as_str()
                            .and_then(contracts::TraceParent::parse),
                        payload: payload.to_string().into_bytes(),
                        event_id,
                    })
                    .collect();
                tracing::info!(count = rows.len(), "relaying unpublished events");
                if let Err(e) = publish_rows(&pool, &publisher, &rows).await {
                    tracing::warn!(error = %e, "outbox relay publish failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox relay cannot read the outbox"),
        }
    }
}
