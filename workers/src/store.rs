//! The runner's SQL. Every batch is a handful of multi-row statements in one
//! transaction; nothing loops over rows.

use contracts::{BookingId, BookingStatus, Event, EventEnvelope, Millis, SeatId, ShowId, UserId};
use sequencer::{LiveBooking, ShowConfig, ShowState};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

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

type LiveRow = (
    Uuid,
    Uuid,
    String,
    Vec<String>,
    Option<i64>,
    i64,
    Option<String>,
);

/// Loads a show's sequencer state: catalog, live bookings, every decided booking id.
/// `Ok(None)` when the show does not exist.
#[tracing::instrument(skip(pool), fields(show_id = %show))]
pub async fn load_show_state(pool: &PgPool, show: ShowId) -> Result<Option<ShowState>, StoreError> {
    let Some(rec) = platform::catalog::load_show(pool, show).await? else {
        return Ok(None);
    };
    let live: Vec<LiveRow> = sqlx::query_as(
        "select id, user_id, status, seats,
                (extract(epoch from hold_expires_at) * 1000)::bigint, amount, currency
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
    let mut bookings = Vec::with_capacity(live.len());
    for (id, user, status, seats, expires, amount, currency) in live {
        let status: BookingStatus = status
            .parse()
            .map_err(|e: String| StoreError::BadShow(show, e))?;
        let seats = seats
            .into_iter()
            .map(SeatId::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::BadShow(show, e.to_string()))?;
        bookings.push(LiveBooking {
            booking_id: BookingId(id),
            user_id: UserId(user),
            status,
            seats,
            hold_expires_at: Millis(expires.unwrap_or(i64::MAX)),
            amount,
            currency: currency.unwrap_or_default(),
        });
    }
    let config = ShowConfig {
        show_id: show,
        on_sale: rec.status == "on_sale",
        layout: rec.layout,
        prices: rec.prices,
    };
    ShowState::restore(config, bookings, known.into_iter().map(BookingId))
        .map(Some)
        .map_err(|e| StoreError::BadShow(show, e.to_string()))
}

/// Ids among `ids` that the inbox has already applied.
pub async fn already_processed(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("select message_id from processed_messages where message_id = any($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}

/// A committed event waiting to be published.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub exchange: String,
    pub routing_key: String,
    pub payload: Vec<u8>,
    pub event_id: Uuid,
}

/// A booking row as first decided (held or rejected).
#[derive(Default)]
struct NewBookings {
    id: Vec<Uuid>,
    user: Vec<Uuid>,
    show: Vec<Uuid>,
    status: Vec<String>,
    seats: Vec<String>,
    amount: Vec<i64>,
    currency: Vec<Option<String>>,
    payment_method: Vec<Option<String>>,
    expires: Vec<Option<i64>>,
    reason: Vec<Option<String>>,
    at: Vec<i64>,
}

/// Everything one batch writes, derived from its events.
#[derive(Default)]
struct BatchRows {
    new: NewBookings,
    /// booking -> (status, reason, at): the last transition in the batch wins.
    transitions: BTreeMap<Uuid, (String, String, i64)>,
    /// (booking, show, seat) allocations made in this batch.
    allocations: Vec<(Uuid, Uuid, String)>,
    /// booking -> when its seats were released in this batch.
    released: BTreeMap<Uuid, i64>,
}

fn rows_of(events: &[EventEnvelope]) -> BatchRows {
    let mut r = BatchRows::default();
    for e in events {
        let b = e.booking_id.0;
        let at = e.occurred_at.0;
        match &e.event {
            Event::BookingHeld {
                user_id,
                seats,
                amount,
                currency,
                hold_expires_at,
                payment_method,
            } => {
                let n = &mut r.new;
                n.id.push(b);
                n.user.push(user_id.0);
                n.show.push(e.show_id.0);
                n.status.push(BookingStatus::Held.as_str().to_owned());
                n.seats.push(
                    seats
                        .iter()
                        .map(SeatId::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                );
                n.amount.push(*amount);
                n.currency.push(Some(currency.clone()));
                n.payment_method.push(payment_method.clone());
                n.expires.push(Some(hold_expires_at.0));
                n.reason.push(None);
                n.at.push(at);
                for s in seats {
                    r.allocations.push((b, e.show_id.0, s.as_str().to_owned()));
                }
            }
            Event::BookingRejected { user_id, reason } => {
                let n = &mut r.new;
                n.id.push(b);
                n.user.push(user_id.0);
                n.show.push(e.show_id.0);
                n.status.push(BookingStatus::Rejected.as_str().to_owned());
                n.seats.push(String::new());
                n.amount.push(0);
                n.currency.push(None);
                n.payment_method.push(None);
                n.expires.push(None);
                n.reason
                    .push(Some(serde_json::to_string(reason).unwrap_or_default()));
                n.at.push(at);
            }
            Event::BookingExpired { .. } => {
                r.transitions.insert(
                    b,
                    (
                        BookingStatus::Expired.as_str().to_owned(),
                        r#"{"code":"hold_expired"}"#.to_owned(),
                        at,
                    ),
                );
                r.released.insert(b, at);
            }
            Event::HoldReleased { reason, .. } => {
                r.transitions.insert(
                    b,
                    (
                        BookingStatus::Failed.as_str().to_owned(),
                        serde_json::json!({"code": "released", "detail": reason}).to_string(),
                        at,
                    ),
                );
                r.released.insert(b, at);
            }
        }
    }
    r
}

/// Commits one batch in one transaction: the epoch fence, new bookings, transitions,
/// seat releases then allocations, the event log, the inbox and the outbox.
/// Returns the outbox rows to publish.
#[tracing::instrument(skip_all, fields(partition = p, epoch, events = events.len()))]
pub async fn commit_batch(
    pool: &PgPool,
    p: u16,
    epoch: i64,
    exchange: &str,
    message_ids: &[Uuid],
    events: &[EventEnvelope],
) -> Result<Vec<OutboxRow>, StoreError> {
    let part = i16::try_from(p).unwrap_or(i16::MAX);
    let rows = rows_of(events);
    let mut tx = pool.begin().await?;

    // The fence: also locks the partition row, so a takeover waits for this commit.
    let fenced = sqlx::query(
        "update partitions set last_batch_at = now(), last_batch_size = $3
          where partition = $1 and epoch = $2",
    )
    .bind(part)
    .bind(epoch)
    .bind(i32::try_from(message_ids.len()).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?;
    if fenced.rows_affected() != 1 {
        return Err(StoreError::Fenced {
            partition: p,
            epoch,
        });
    }

    if !rows.new.id.is_empty() {
        let n = &rows.new;
        sqlx::query(
            "insert into bookings (id, user_id, show_id, status, seats, amount, currency,
                                   payment_method, hold_expires_at, reason, created_at, updated_at)
             select u.id, u.user_id, u.show_id, u.status, string_to_array(u.seats, ','), u.amount,
                    u.currency, u.pm, to_timestamp(u.exp / 1000.0), u.reason::jsonb,
                    to_timestamp(u.at / 1000.0), to_timestamp(u.at / 1000.0)
               from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int8[],
                           $7::text[], $8::text[], $9::int8[], $10::text[], $11::int8[])
                    as u(id, user_id, show_id, status, seats, amount, currency, pm, exp, reason, at)
             on conflict (id) do nothing",
        )
        .bind(&n.id)
        .bind(&n.user)
        .bind(&n.show)
        .bind(&n.status)
        .bind(&n.seats)
        .bind(&n.amount)
        .bind(&n.currency)
        .bind(&n.payment_method)
        .bind(&n.expires)
        .bind(&n.reason)
        .bind(&n.at)
        .execute(&mut *tx)
        .await?;
    }

    if !rows.transitions.is_empty() {
        let ids: Vec<Uuid> = rows.transitions.keys().copied().collect();
        let status: Vec<&str> = rows.transitions.values().map(|t| t.0.as_str()).collect();
        let reason: Vec<&str> = rows.transitions.values().map(|t| t.1.as_str()).collect();
        let at: Vec<i64> = rows.transitions.values().map(|t| t.2).collect();
        sqlx::query(
            "update bookings b
                set status = u.status, reason = u.reason::jsonb,
                    updated_at = to_timestamp(u.at / 1000.0)
               from unnest($1::uuid[], $2::text[], $3::text[], $4::int8[]) as u(id, status, reason, at)
              where b.id = u.id",
        )
        .bind(&ids)
        .bind(&status)
        .bind(&reason)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
    }

    // Releases of earlier allocations first, so that seats freed in this batch are
    // free in the database before this batch's allocations are inserted.
    if !rows.released.is_empty() {
        let ids: Vec<Uuid> = rows.released.keys().copied().collect();
        let at: Vec<i64> = rows.released.values().copied().collect();
        sqlx::query(
            "update booking_seats s set released_at = to_timestamp(u.at / 1000.0)
               from unnest($1::uuid[], $2::int8[]) as u(booking_id, at)
              where s.booking_id = u.booking_id and s.released_at is null",
        )
        .bind(&ids)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
    }

    if !rows.allocations.is_empty() {
        let booking: Vec<Uuid> = rows.allocations.iter().map(|a| a.0).collect();
        let show: Vec<Uuid> = rows.allocations.iter().map(|a| a.1).collect();
        let seat: Vec<&str> = rows.allocations.iter().map(|a| a.2.as_str()).collect();
        // An allocation made and released within this batch is stored released.
        let released: Vec<Option<i64>> = rows
            .allocations
            .iter()
            .map(|a| rows.released.get(&a.0).copied())
            .collect();
        // No ON CONFLICT for the live-seat index: a double allocation must fail loudly.
        sqlx::query(
            "insert into booking_seats (booking_id, show_id, seat_id, released_at)
             select u.b, u.s, u.seat, to_timestamp(u.rel / 1000.0)
               from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int8[]) as u(b, s, seat, rel)",
        )
        .bind(&booking)
        .bind(&show)
        .bind(&seat)
        .bind(&released)
        .execute(&mut *tx)
        .await?;
    }

    let mut outbox = Vec::new();
    if !events.is_empty() {
        let id: Vec<Uuid> = events.iter().map(|e| e.event_id.0).collect();
        let booking: Vec<Uuid> = events.iter().map(|e| e.booking_id.0).collect();
        let show: Vec<Uuid> = events.iter().map(|e| e.show_id.0).collect();
        let kind: Vec<&str> = events.iter().map(|e| e.event.routing_key()).collect();
        let payload: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect();
        let caused_by: Vec<Uuid> = events.iter().map(|e| e.caused_by.0).collect();
        let at: Vec<i64> = events.iter().map(|e| e.occurred_at.0).collect();
        sqlx::query(
            "insert into booking_events (id, booking_id, show_id, type, payload, caused_by, occurred_at)
             select u.id, u.b, u.s, u.t, u.p::jsonb, u.c, to_timestamp(u.at / 1000.0)
               from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::uuid[], $7::int8[])
                    with ordinality as u(id, b, s, t, p, c, at, ord)
              order by u.ord",
        )
        .bind(&id)
        .bind(&booking)
        .bind(&show)
        .bind(&kind)
        .bind(&payload)
        .bind(&caused_by)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        let ids: Vec<(i64, Uuid)> = sqlx::query_as(
            "insert into outbox (event_id, exchange, routing_key, payload)
             select u.id, $2, u.k, u.p::jsonb
               from unnest($1::uuid[], $3::text[], $4::text[]) with ordinality as u(id, k, p, ord)
              order by u.ord
             returning id, event_id",
        )
        .bind(&id)
        .bind(exchange)
        .bind(&kind)
        .bind(&payload)
        .fetch_all(&mut *tx)
        .await?;
        let by_event: std::collections::HashMap<Uuid, i64> =
            ids.into_iter().map(|(i, e)| (e, i)).collect();
        for (e, p) in events.iter().zip(payload) {
            outbox.push(OutboxRow {
                id: by_event.get(&e.event_id.0).copied().unwrap_or_default(),
                exchange: exchange.to_owned(),
                routing_key: e.event.routing_key().to_owned(),
                payload: p.into_bytes(),
                event_id: e.event_id.0,
            });
        }
    }

    sqlx::query(
        "insert into processed_messages (message_id, partition)
         select unnest($1::uuid[]), $2 on conflict do nothing",
    )
    .bind(message_ids)
    .bind(part)
    .execute(&mut *tx)
    .await?;

    tx.commit().await?;
    Ok(outbox)
}
