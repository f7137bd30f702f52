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
//! So `POST /v1/bookings` inserts one `accepted_bookings` row after the publisher
//! confirm and before answering: one extra round trip on the hot path (a primary-key
//! insert, `ingress_acceptance_record_seconds`; a fraction of the confirm it follows,
//! `ingress_publish_confirm_seconds`), no batching needed. After the confirm, not
//! before: a row then always has a command behind it, so `queued` never outlives a
//! publish that failed. If the insert fails the answer is `503` (retry with the same
//! key: the same booking, published again and applied once by the sequencer's
//! inbox), so no `202` exists without its row. A PostgreSQL outage therefore turns
//! bookings into 503s instead of 202s; `GET` could not have answered during it
//! either, and the sequencer cannot decide without PostgreSQL.
//!
//! `GET` reads the booking first, then this row, then the Redis marker (which still
//! serves acceptances recorded before this table existed), and answers `404` only
//! when none has it. The retention sweep (workers) removes a row a minute after its
//! booking is decided, long after any `GET` that missed the booking has read it.

use crate::problem::ApiError;
use crate::state::AppState;
use contracts::{BookingId, Millis, SeatId, ShowId, UserId};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
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

/// Records durably that `booking` was accepted (after its publisher confirm, before
/// the 202). Idempotent: a retry of the same request finds the row.
pub(crate) async fn record(
    app: &AppState,
    booking: BookingId,
    marker: &QueuedMarker,
) -> Result<(), ApiError> {
    let started = std::time::Instant::now();
    let seats: Vec<String> = marker.seats.iter().map(|s| s.to_string()).collect();
    sqlx::query(
        "insert into accepted_bookings (booking_id, user_id, show_id, seats)
         values ($1, $2, $3, $4) on conflict (booking_id) do nothing",
    )
    .bind(booking.0)
    .bind(marker.user_id.0)
    .bind(marker.show_id.0)
    .bind(&seats)
    .execute(&app.db)
    .await
    // Whatever the database error, the request can be retried with its key.
    .map_err(|e| ApiError::Unavailable(e.into()))?;
    metrics::histogram!("ingress_acceptance_record_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok(())
}

/// The accepted, undecided booking `booking`: from its `accepted_bookings` row, else
/// from the Redis marker; `None` if ingress never accepted it.
pub(crate) async fn queued(app: &AppState, booking: BookingId) -> Result<Option<Queued>, ApiError> {
    let row: Option<(Uuid, Uuid, Vec<String>, time::OffsetDateTime)> = sqlx::query_as(
        "select user_id, show_id, seats, accepted_at from accepted_bookings where booking_id = $1",
    )
    .bind(booking.0)
    .fetch_optional(&app.db)
    .await?;
    if let Some((user, show, seats, accepted_at)) = row {
        return Ok(Some(Queued {
            user_id: UserId(user),
            show_id: ShowId(show),
            seats,
            created_at: accepted_at,
        }));
    }
    let mut redis = app.redis.clone();
    let raw: Option<String> = redis
        .get(app.keys.queued(booking))
        .await
        .unwrap_or_else(|e| {
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
