//! The sequencer's persistence (the runner's SQL), shared by the workers' runner and
//! the operator CLI's dry run. Every batch is a handful of multi-row statements in
//! one transaction; nothing loops over rows.

use contracts::{BookingId, BookingStatus, Millis, SeatId, ShowId, UserId, ZonePlaces};
use sequencer::{ClosedBooking, LiveBooking, ShowConfig, ShowState};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

mod commit;
mod fence;
mod zones;

pub use commit::{Committed, OutboxRow, commit_batch, seal_partition};
pub use fence::{PartitionRef, Successor, acquire_partition, already_processed, seal_of};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another runner took the partition: this one must stop writing.
    #[error("partition {partition} is fenced: epoch {epoch} is no longer current")]
    Fenced { partition: u16, epoch: i64 },
    #[error("show {0} cannot be loaded: {1}")]
    BadShow(ShowId, String),
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
}

/// A booking that holds seats: held, payment pending or confirmed.
#[derive(sqlx::FromRow)]
struct LiveRow {
    id: Uuid,
    user_id: Uuid,
    status: String,
    seats: Vec<String>,
    /// The hold's expiry in ms, if it has one.
    expires_ms: Option<i64>,
    amount: i64,
    currency: Option<String>,
    payment_id: Option<String>,
    decline_reason: Option<String>,
    zones: Json<Vec<ZonePlaces>>,
}

/// A booking without seats that money may still touch (a late payment, a refund).
#[derive(sqlx::FromRow)]
struct ClosedRow {
    id: Uuid,
    user_id: Uuid,
    status: String,
    seats: Vec<String>,
    amount: i64,
    currency: Option<String>,
    payment_id: Option<String>,
    /// Cancelled, or its late payment refused: a refund is still to come.
    refund_pending: bool,
    zones: Json<Vec<ZonePlaces>>,
}

/// Loads a show's sequencer state: catalog, live bookings, every decided booking id.
/// `Ok(None)` when the show does not exist.
#[tracing::instrument(skip(pool), fields(show_id = %show))]
pub async fn load_show_state(pool: &PgPool, show: ShowId) -> Result<Option<ShowState>, StoreError> {
    let Some(rec) = platform::catalog::load_show(pool, show).await? else {
        return Ok(None);
    };
    let live: Vec<LiveRow> = sqlx::query_as(
        "select id, user_id, status, seats,
                (extract(epoch from hold_expires_at) * 1000)::bigint as expires_ms, amount, currency,
                payment_id,
                decline_reason, zones
           from bookings
          where show_id = $1 and status in ('held', 'payment_pending', 'confirmed')",
    )
    .bind(show.0)
    .fetch_all(pool)
    .await?;
    let known: Vec<Uuid> = sqlx::query_scalar("select id from bookings where show_id = $1")
        .bind(show.0)
        .fetch_all(pool)
        .await?;
    // Bookings without seats that money may still touch (a late payment, a refund).
    let closed: Vec<ClosedRow> = sqlx::query_as(
        "select b.id, b.user_id, b.status, b.seats, b.amount, b.currency, b.payment_id,
                b.status = 'cancelled' or exists (
                    select 1 from booking_events e
                     where e.booking_id = b.id and e.type = 'booking.late_payment_refused')
                  as refund_pending,
                b.zones
           from bookings b
          where b.show_id = $1 and b.status in ('expired', 'failed', 'cancelled', 'released')",
    )
    .bind(show.0)
    .fetch_all(pool)
    .await?;
    let bad = |e: String| StoreError::BadShow(show, e);
    let parse_seats = |seats: Vec<String>| {
        seats
            .into_iter()
            .map(SeatId::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::BadShow(show, e.to_string()))
    };
    let mut bookings = Vec::with_capacity(live.len());
    for b in live {
        let status: BookingStatus = b.status.parse().map_err(bad)?;
        bookings.push(LiveBooking {
            booking_id: BookingId(b.id),
            user_id: UserId(b.user_id),
            status,
            seats: parse_seats(b.seats)?,
            hold_expires_at: Millis(b.expires_ms.unwrap_or(i64::MAX)),
            amount: b.amount,
            currency: b.currency.unwrap_or_default(),
            payment_id: b.payment_id,
            // Only an open booking's last decline matters (a hold running out
            // after one fails the booking).
            declined: b
                .decline_reason
                .filter(|_| status != BookingStatus::Confirmed),
            zones: b.zones.0,
        });
    }
    let mut closed_bookings = Vec::with_capacity(closed.len());
    for b in closed {
        closed_bookings.push(ClosedBooking {
            booking_id: BookingId(b.id),
            user_id: UserId(b.user_id),
            status: b.status.parse().map_err(bad)?,
            seats: parse_seats(b.seats)?,
            amount: b.amount,
            currency: b.currency.unwrap_or_default(),
            payment_id: b.payment_id,
            refund_pending: b.refund_pending,
            zones: b.zones.0,
        });
    }
    let config = ShowConfig {
        show_id: show,
        on_sale: rec.status == contracts::ShowStatus::OnSale,
        layout: rec.layout,
        prices: rec.prices,
        max_tickets_per_user: rec.max_tickets_per_user,
        pricing: rec.pricing,
        starts_at: Some(rec.starts_at),
        // A seat id that does not parse is not in any layout: ignored, like one
        // the layout lacks.
        blocked: rec
            .blocked_seats
            .into_iter()
            .filter_map(|s| SeatId::try_from(s).ok())
            .collect(),
    };
    ShowState::restore(config, bookings, known.into_iter().map(BookingId))
        .and_then(|s| s.with_closed(closed_bookings))
        .map(Some)
        .map_err(|e| StoreError::BadShow(show, e.to_string()))
}
