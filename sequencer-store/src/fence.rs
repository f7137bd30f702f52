//! The partition fence and the inbox: which runner owns a partition (its epoch),
//! which messages it has already applied, and the seal that closes a partition of an
//! old layout generation.

use sqlx::PgPool;
use uuid::Uuid;

/// A partition of one layout generation (see `docs/repartition.md`). A bare `u16`
/// is a partition of generation 1, the layout a deployment starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionRef {
    pub generation: u16,
    pub partition: u16,
}

impl From<u16> for PartitionRef {
    fn from(partition: u16) -> Self {
        Self {
            generation: 1,
            partition,
        }
    }
}

impl PartitionRef {
    pub(crate) fn keys(self) -> (i16, i16) {
        (
            i16::try_from(self.generation).unwrap_or(i16::MAX),
            i16::try_from(self.partition).unwrap_or(i16::MAX),
        )
    }
}

/// Takes partition `p` for `owner`: bumps and returns its epoch. Every later batch
/// of the previous owner is refused.
#[tracing::instrument(skip(pool, p))]
pub async fn acquire_partition(
    pool: &PgPool,
    p: impl Into<PartitionRef>,
    owner: &str,
) -> Result<i64, sqlx::Error> {
    let (generation, partition) = p.into().keys();
    sqlx::query_scalar(
        "insert into partitions (generation, partition, epoch, owner, acquired_at)
         values ($1, $2, 1, $3, now())
         on conflict (generation, partition) do update
            set epoch = partitions.epoch + 1, owner = excluded.owner, acquired_at = now()
         returning epoch",
    )
    .bind(generation)
    .bind(partition)
    .bind(owner)
    .fetch_one(pool)
    .await
}

/// Ids among `ids` that the inbox has already applied.
pub async fn already_processed(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("select message_id from processed_messages where message_id = any($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}

/// The layout that replaced a sealed partition: its generation and partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Successor {
    pub generation: u16,
    pub partitions: u16,
}

/// The seal of `p`, if its runner recorded one.
pub async fn seal_of(pool: &PgPool, p: PartitionRef) -> Result<Option<Successor>, sqlx::Error> {
    let (generation, partition) = p.keys();
    let row: Option<(i16, i16)> = sqlx::query_as(
        "select next_generation, next_partitions from partition_seals
          where generation = $1 and partition = $2",
    )
    .bind(generation)
    .bind(partition)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(g, n)| Successor {
        generation: u16::try_from(g).unwrap_or(0),
        partitions: u16::try_from(n).unwrap_or(0),
    }))
}
