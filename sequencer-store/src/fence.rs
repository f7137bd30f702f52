//! The partition fence and the inbox: which runner owns a partition (its epoch),
//! and which messages it has already applied.

use sqlx::PgPool;
use uuid::Uuid;

/// Takes partition `p` for `owner`: bumps and returns its epoch. Every later batch
/// of the previous owner is refused.
#[tracing::instrument(skip(pool))]
pub async fn acquire_partition(pool: &PgPool, p: u16, owner: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into partitions (partition, epoch, owner, acquired_at)
         values ($1, 1, $2, now())
         on conflict (partition) do update
            set epoch = partitions.epoch + 1, owner = excluded.owner, acquired_at = now()
         returning epoch",
    )
    .bind(i16::try_from(p).unwrap_or(i16::MAX))
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
