//! Reminders before a show: when a show's reminder time comes
//! (`notifier.reminder_before_secs` before it starts), each booking of it confirmed
//! by then gets a `booking.reminder` event ([`EventEnvelope::reminder`]) in the
//! outbox, published like the sequencer's events ([`crate::events`]) to the
//! notifier, which sends it by email and/or SMS as the buyer's `preferences.notify`
//! says, once per channel (its `sent_messages` rows, as for every event).
//!
//! Cheap, and claimed once:
//! - a round reads only the shows starting within the reminder window (the
//!   `shows_starts_at_all` index) with no `show_reminders` row for their current
//!   start, at most [`SHOWS_PER_ROUND_MAX`];
//! - a show is claimed by inserting its `show_reminders` row in the same
//!   transaction as its bookings' outbox rows: of several workers processes, one
//!   writes a show's reminders and the others skip it; a crash before the commit
//!   leaves the show to the next round, one after it leaves the outbox rows to the
//!   relay;
//! - the event ids are fixed by (booking, show start), so even reminders written
//!   twice (an operator deleting the claim, say) are sent once per channel.
//!
//! Who gets one (README, "Reminders before a show"):
//! - a booking confirmed at the show's reminder time and when the sweep claims the
//!   show. One confirmed later (after the reminder time, or after the show's
//!   reminders went out) gets none: its confirmation, just sent, says when and where;
//! - nothing for a cancelled show, nor once the show has begun (workers down through
//!   the whole window send no late reminder);
//! - a booking cancelled or refunded, or a show cancelled, moved or begun, between
//!   the sweep and the send: the notifier checks again and sends nothing;
//! - a show moved to another time is reminded again for its new time.

use contracts::{BookingId, EventEnvelope, Reminder, SeatId, ShowId, UserId, ZonePlaces};
use platform::amqp::ConfirmedPublisher;
use sequencer_store::OutboxRow;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most shows whose reminders one round writes (each in its own transaction).
pub const SHOWS_PER_ROUND_MAX: i64 = 50;

/// A booking to remind: id, user, seats, general-admission places.
type BookingRow = (Uuid, Uuid, Vec<String>, serde_json::Value);

/// One round: writes and publishes the reminders of the shows whose reminder time
/// has come, `before` ahead of their start; returns how many reminders.
pub async fn sweep_once(
    pool: &PgPool,
    publisher: &ConfirmedPublisher,
    exchange: &str,
    before: Duration,
) -> anyhow::Result<usize> {
    let due: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as(
        "select s.id, s.starts_at from shows s
          where s.starts_at > now() and s.starts_at <= now() + make_interval(secs => $1)
            and s.status <> 'cancelled'
            and not exists (select 1 from show_reminders r
                             where r.show_id = s.id and r.starts_at = s.starts_at)
          order by s.starts_at limit $2",
    )
    .bind(before.as_secs_f64())
    .bind(SHOWS_PER_ROUND_MAX)
    .fetch_all(pool)
    .await?;
    metrics::counter!("reminder_sweeps_total").increment(1);
    let mut n = 0;
    for (show, starts_at) in due {
        let Some(rows) = remind_show(pool, exchange, ShowId(show), starts_at, before).await? else {
            continue;
        };
        n += rows.len();
        tracing::info!(show_id = %show, reminders = rows.len(), "show reminders written");
        metrics::counter!("reminders_queued_total").increment(rows.len() as u64);
        if let Err(e) = crate::events::publish_rows(pool, publisher, &rows).await {
            tracing::warn!(error = %e, "publishing reminders failed; the outbox relay will retry");
        }
    }
    Ok(n)
}

/// Claims `show` (starting at `starts_at`) and writes its reminders to the outbox
/// in one transaction; `None` when another sweep has claimed it.
async fn remind_show(
    pool: &PgPool,
    exchange: &str,
    show: ShowId,
    starts_at: OffsetDateTime,
    before: Duration,
) -> Result<Option<Vec<OutboxRow>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Waits for a concurrent claim of the same show to commit or roll back.
    let claimed = sqlx::query(
        "insert into show_reminders (show_id, starts_at) values ($1, $2)
         on conflict (show_id, starts_at) do nothing",
    )
    .bind(show.0)
    .bind(starts_at)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return Ok(None);
    }
    let bookings: Vec<BookingRow> = sqlx::query_as(
        "select id, user_id, seats, zones from bookings
          where show_id = $1 and status = 'confirmed'
            and updated_at <= $2 - make_interval(secs => $3)",
    )
    .bind(show.0)
    .bind(starts_at)
    .bind(before.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    let now = platform::now_millis();
    let start = platform::millis_of(starts_at);
    let events: Vec<EventEnvelope> = bookings
        .into_iter()
        .map(|(booking, user, seats, zones)| {
            EventEnvelope::reminder(
                Reminder {
                    show_id: show,
                    booking_id: BookingId(booking),
                    user_id: UserId(user),
                    seats: seats
                        .into_iter()
                        .filter_map(|s| SeatId::try_from(s).ok())
                        .collect(),
                    zones: serde_json::from_value::<Vec<ZonePlaces>>(zones).unwrap_or_default(),
                    starts_at: start,
                },
                now,
            )
        })
        .collect();
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id.0).collect();
    let keys: Vec<&str> = events.iter().map(|e| e.event.routing_key()).collect();
    let payloads: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect();
    // A reminder still in the outbox (written before, not yet published) is kept.
    let written: HashMap<Uuid, i64> = sqlx::query_as::<_, (Uuid, i64)>(
        "insert into outbox (event_id, exchange, routing_key, payload)
         select u.id, $2, u.k, u.p::jsonb
           from unnest($1::uuid[], $3::text[], $4::text[]) as u(id, k, p)
         on conflict (event_id) do nothing
         returning event_id, id",
    )
    .bind(&ids)
    .bind(exchange)
    .bind(&keys)
    .bind(&payloads)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    sqlx::query("update show_reminders set bookings = $3 where show_id = $1 and starts_at = $2")
        .bind(show.0)
        .bind(starts_at)
        .bind(i32::try_from(ids.len()).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(
        events
            .iter()
            .zip(payloads)
            .filter_map(|(e, payload)| {
                Some(OutboxRow {
                    id: *written.get(&e.event_id.0)?,
                    exchange: exchange.to_owned(),
                    routing_key: e.event.routing_key().to_owned(),
                    payload: payload.into_bytes(),
                    event_id: e.event_id.0,
                    trace: None,
                })
            })
            .collect(),
    ))
}

/// Sweeps every `every` until shutdown.
pub async fn run(
    pool: PgPool,
    publisher: ConfirmedPublisher,
    exchange: String,
    before: Duration,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = platform::every(every, &shutdown);
    while ticks.tick().await {
        if let Err(e) = sweep_once(&pool, &publisher, &exchange, before).await {
            tracing::warn!(error = %e, "reminder sweep failed");
        }
    }
}
