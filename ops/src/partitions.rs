//! The partitions of a topology: queue depth and consumers from the broker, owner,
//! epoch and last batch from PostgreSQL.

use crate::OpsError;
use contracts::Topology;
use lapin::Connection;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One partition at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionInfo {
    /// Its layout generation (1 until the partition count is grown) and that
    /// layout's state: `current`, or `declared` / `retiring` during a growth.
    pub generation: u16,
    pub layout: &'static str,
    pub partition: u16,
    pub queue: String,
    /// Ready messages waiting in the partition queue.
    pub messages: u32,
    /// Consumers of the queue: the active runner plus the standbys single active
    /// consumer keeps waiting.
    pub consumers: u32,
    /// The runner that last took the partition (the active one, unless it died
    /// since and no other has taken over yet). `None` before the first batch.
    pub owner: Option<String>,
    /// The fencing epoch: bumped by every takeover.
    pub epoch: Option<i64>,
    /// RFC 3339 times.
    pub acquired_at: Option<String>,
    pub last_batch_at: Option<String>,
    pub last_batch_size: Option<i32>,
}

type Row = (
    i16,
    i16,
    i64,
    Option<String>,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<i32>,
);

/// Every partition of every layout generation of `root`'s deployment not retired
/// (one, but during a growth), in order.
#[tracing::instrument(skip_all)]
pub async fn list(
    conn: &Connection,
    pool: &PgPool,
    root: &Topology,
) -> Result<Vec<PartitionInfo>, OpsError> {
    let rows: Vec<Row> = sqlx::query_as(
        "select generation, partition, epoch, owner, acquired_at, last_batch_at, last_batch_size
           from partitions",
    )
    .fetch_all(pool)
    .await?;
    let mut by_partition: HashMap<(u16, u16), Row> = rows
        .into_iter()
        .filter_map(|r| Some(((u16::try_from(r.0).ok()?, u16::try_from(r.1).ok()?), r)))
        .collect();
    let gens = platform::layout::generations(pool, root.partitions).await?;
    let live: Vec<_> = gens
        .iter()
        .filter(|g| g.state != platform::layout::LayoutState::Retired)
        .map(|g| {
            (
                root.at_layout(g.layout.generation, g.layout.partitions),
                g.state,
            )
        })
        .collect();
    let ch = conn.create_channel().await?;
    let mut out = Vec::new();
    for (p, topo, state) in live
        .iter()
        .flat_map(|(t, st)| t.all_partitions().map(move |p| (p, t, *st)))
    {
        let queue = topo.partition_queue(p);
        let counts = platform::amqp::queue_counts(&ch, &queue).await;
        let (messages, consumers) = match counts {
            Ok(c) => c,
            Err(e) => {
                drop(ch.close(200, "ops done".into()).await);
                return Err(e.into());
            }
        };
        let row = by_partition.remove(&(topo.generation, p));
        out.push(PartitionInfo {
            generation: topo.generation,
            layout: state.as_str(),
            partition: p,
            queue,
            messages,
            consumers,
            owner: row.as_ref().and_then(|r| r.3.clone()),
            epoch: row.as_ref().map(|r| r.2),
            acquired_at: row.as_ref().and_then(|r| r.4).map(rfc3339),
            last_batch_at: row.as_ref().and_then(|r| r.5).map(rfc3339),
            last_batch_size: row.as_ref().and_then(|r| r.6),
        });
    }
    drop(ch.close(200, "ops done".into()).await);
    Ok(out)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}
