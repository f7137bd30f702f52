//! What ingress remembers of a booking it answered `202` for until the sequencer
//! has decided it, so that `GET /v1/bookings/{id}` answers `queued`, never `404`.
//!
//! # Why a PostgreSQL row, written before the 202
//!
//! The Redis `queued` marker is a cache: a Redis restart, flush or failed write
//! loses it, and a booking the sequencer has not written yet then looked unknown
//! (up to 14 s under load, while its command waited in its partition and was later
//! charged). The record of acceptance must be as durable as the command itself, and
//! only ingress knows, at the moment of the 202, which ids it accepted: the id is
//! derived from user and key, but an id alone cannot tell an accepted booking from a
//! guessed one, and the command in the queue cannot be looked up by id.
//!
//! So `POST /v1/bookings` records the acceptance after the publisher confirm and
//! before answering. After the confirm, not before: a row then always has a command
//! behind it, so `queued` never outlives a publish that failed. If the record fails
//! the answer is `503` (retry with the same key: the same booking, published again
//! and applied once by the sequencer's inbox), so no `202` exists without its row. A
//! PostgreSQL outage therefore turns bookings into 503s instead of 202s; `GET` could
//! not have answered during it either, and the sequencer cannot decide without
//! PostgreSQL.
//!
//! The cost on the hot path is kept to one round trip shared by many requests: the
//! records go through one writer task ([`AcceptanceLog`]) that inserts whatever has
//! arrived while its previous insert ran, in one statement (group commit), on one
//! connection. Measured (2,000 bookings, 64 at a time, debug build on a busy
//! 2-core machine, `ingress_acceptance_record_seconds` next to
//! `ingress_publish_confirm_seconds`): one insert per request took 3.8 s in all, a
//! mean of 44 ms per record against 16 ms per confirm, the requests queueing for
//! the 16 pooled connections they also need for reading; batched, 2.0 s in all, a
//! mean of 17 ms per record (mostly waiting for the batch in flight) against 8 ms
//! per confirm.
//!
//! `GET` reads the booking first, then this row, then the Redis marker (which still
//! serves acceptances recorded before this table existed), and answers `404` only
//! when none has it. The retention sweep (workers) removes a row a minute after its
//! booking is decided, long after any `GET` that missed the booking has read it.

use crate::problem::ApiError;
use contracts::{BookingId, Millis, SeatId, ShowId, UserId};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// What ingress remembers in Redis about a booking the sequencer has not decided
/// (also what catches a key reused for a different request).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct QueuedMarker {
    pub user_id: UserId,
    pub show_id: ShowId,
    pub seats: Vec<SeatId>,
    pub fingerprint: String,
    pub created_at: Millis,
}

/// A booking accepted and not decided yet, as `GET` shows it.
pub(crate) struct Queued {
    pub user_id: UserId,
    pub show_id: ShowId,
    pub seats: Vec<String>,
    pub created_at: time::OffsetDateTime,
}

/// Most records one insert carries.
const BATCH_MAX: usize = 512;
/// Requests that may wait for the writer; more wait for room (backpressure).
const QUEUE_MAX: usize = 4096;

/// One record waiting for the writer, and where its outcome goes.
struct Pending {
    booking: Uuid,
    user: Uuid,
    show: Uuid,
    /// The chosen seats, comma-separated (a seat id has no comma).
    seats: String,
    done: oneshot::Sender<Result<(), String>>,
}

/// The writer of records of acceptance: requests hand it their record and wait for
/// the insert that carries it (see the module's documentation).
#[derive(Clone)]
pub struct AcceptanceLog {
    tx: mpsc::Sender<Pending>,
}

impl AcceptanceLog {
    /// Starts the writer on `db`; it stops when the last handle is dropped.
    pub fn start(db: PgPool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(write(db, rx));
        Self { tx }
    }
}

async fn write(db: PgPool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while rx.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let column = |f: fn(&Pending) -> Uuid| batch.iter().map(f).collect::<Vec<_>>();
        let seats: Vec<&str> = batch.iter().map(|p| p.seats.as_str()).collect();
        let res = sqlx::query(
            "insert into accepted_bookings (booking_id, user_id, show_id, seats)
             select b, u, s, case when seats = '' then '{}' else string_to_array(seats, ',') end
               from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[]) as t(b, u, s, seats)
             on conflict (booking_id) do nothing",
        )
        .bind(column(|p| p.booking))
        .bind(column(|p| p.user))
        .bind(column(|p| p.show))
        .bind(&seats)
        .execute(&db)
        .await
        .map(drop)
        .map_err(|e| e.to_string());
        metrics::histogram!("ingress_acceptance_batch_size").record(batch.len() as f64);
        for p in batch.drain(..) {
            // The request may have gone (client disconnected): nothing to tell.
            drop(p.done.send(res.clone()));
        }
    }
}

/// Records durably that `booking` was accepted (after its publisher confirm, before
/// the 202), in the writer's next batch. Idempotent: a retry of the same request
/// finds the row.
pub(crate) async fn record(
    log: &AcceptanceLog,
    booking: BookingId,
    marker: &QueuedMarker,
) -> Result<(), ApiError> {
    let started = std::time::Instant::now();
    let (done, outcome) = oneshot::channel();
    let pending = Pending {
        booking: booking.0,
        user: marker.user_id.0,
        show: marker.show_id.0,
        seats: marker
            .seats
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(","),
        done,
    };
    let unavailable = |why: String| {
        ApiError::Unavailable(anyhow::anyhow!("the acceptance was not recorded: {why}"))
    };
    log.tx
        .send(pending)
        .await
        .map_err(|_| unavailable("the writer stopped".into()))?;
    outcome
        .await
        .map_err(|_| unavailable("the writer stopped".into()))?
        // Whatever the database error, the request can be retried with its key.
        .map_err(unavailable)?;
    metrics::histogram!("ingress_acceptance_record_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok(())
}

/// The accepted, undecided booking `booking`: from its `accepted_bookings` row, else
/// from the Redis marker; `None` if ingress never accepted it.
pub(crate) async fn queued(
    db: &sqlx::PgPool,
    redis: &platform::cache::Redis,
    keys: &platform::cache::Keys,
    booking: BookingId,
) -> Result<Option<Queued>, ApiError> {
    let row: Option<(Uuid, Uuid, Vec<String>, time::OffsetDateTime)> = sqlx::query_as(
        "select user_id, show_id, seats, accepted_at from accepted_bookings where booking_id = $1",
    )
    .bind(booking.0)
    .fetch_optional(db)
    .await?;
    if let Some((user, show, seats, accepted_at)) = row {
        return Ok(Some(Queued {
            user_id: UserId(user),
            show_id: ShowId(show),
            seats,
            created_at: accepted_at,
        }));
    }
    let mut redis = redis.clone();
    let raw: Option<String> = redis.get(keys.queued(booking)).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "redis unavailable; cannot see queued marker");
        None
    });
    Ok(raw
        .and_then(|r| serde_json::from_str::<QueuedMarker>(&r).ok())
        .map(|m| Queued {
            user_id: m.user_id,
            show_id: m.show_id,
            seats: m.seats.into_iter().map(String::from).collect(),
            created_at: time::OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(m.created_at.0) * 1_000_000,
            )
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        }))
}
