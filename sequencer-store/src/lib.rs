//! The sequencer's persistence (the runner's SQL), shared by the workers' runner and
//! the operator CLI's dry run. Every batch is a handful of multi-row statements in
//! one transaction; nothing loops over rows.

use contracts::{
    BookingId, BookingStatus, Event, EventEnvelope, Millis, SeatId, ShowId, UserId, ZonePlaces,
};
use sequencer::{ClosedBooking, LiveBooking, ShowConfig, ShowState};
use sqlx::PgPool;
use sqlx::types::Json;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

mod fence;
mod zones;

pub use fence::{acquire_partition, already_processed};

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

/// id, user, status, seats, hold expiry (ms), amount, currency, payment id,
/// decline reason, zone places.
type LiveRow = (
    Uuid,
    Uuid,
    String,
    Vec<String>,
    Option<i64>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Json<Vec<ZonePlaces>>,
);
/// id, user, status, seats, amount, currency, payment id, refund pending, zone
/// places.
type ClosedRow = (
    Uuid,
    Uuid,
    String,
    Vec<String>,
    i64,
    Option<String>,
    Option<String>,
    bool,
    Json<Vec<ZonePlaces>>,
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
                (extract(epoch from hold_expires_at) * 1000)::bigint, amount, currency, payment_id,
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
                     where e.booking_id = b.id and e.type = 'booking.late_payment_refused'),
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
    for (id, user, status, seats, expires, amount, currency, payment_id, declined, zones) in live {
        bookings.push(LiveBooking {
            booking_id: BookingId(id),
            user_id: UserId(user),
            status: status.parse().map_err(bad)?,
            seats: parse_seats(seats)?,
            hold_expires_at: Millis(expires.unwrap_or(i64::MAX)),
            amount,
            currency: currency.unwrap_or_default(),
            payment_id,
            // Only an open booking's last decline matters (a hold running out
            // after one fails the booking).
            declined: declined.filter(|_| status != "confirmed"),
            zones: zones.0,
        });
    }
    let mut closed_bookings = Vec::with_capacity(closed.len());
    for (id, user, status, seats, amount, currency, payment_id, refund_pending, zones) in closed {
        closed_bookings.push(ClosedBooking {
            booking_id: BookingId(id),
            user_id: UserId(user),
            status: status.parse().map_err(bad)?,
            seats: parse_seats(seats)?,
            amount,
            currency: currency.unwrap_or_default(),
            payment_id,
            refund_pending,
            zones: zones.0,
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

/// A committed event waiting to be published.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub exchange: String,
    pub routing_key: String,
    pub payload: Vec<u8>,
    pub event_id: Uuid,
    /// The event's trace, sent as the `traceparent` header.
    pub trace: Option<contracts::TraceParent>,
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
    /// `bookings.zones` JSON.
    zones: Vec<String>,
}

/// A later transition of a booking already decided.
struct Transition {
    status: &'static str,
    /// `reason` JSON, or None to keep the current one.
    reason: Option<String>,
    /// The gateway payment id, or None to keep the current one.
    payment_id: Option<String>,
    /// Why the last payment attempt was declined, or None to keep the current one.
    decline_reason: Option<String>,
    at: i64,
}

/// Everything one batch writes, derived from its events.
#[derive(Default)]
struct BatchRows {
    new: NewBookings,
    /// booking -> its last transition in the batch.
    transitions: BTreeMap<Uuid, Transition>,
    /// (booking, show, seat) allocations made in this batch (holds and re-takes).
    allocations: Vec<(Uuid, Uuid, String)>,
    /// Zone places taken in this batch (holds and re-takes).
    zone_allocations: Vec<zones::ZoneAllocation>,
    /// booking -> Some(at) if its seats end the batch released, None if they end live.
    seats_end: BTreeMap<Uuid, Option<i64>>,
}

fn reason(code: &str, detail: Option<&str>) -> Option<String> {
    Some(match detail {
        Some(d) => serde_json::json!({"code": code, "detail": d}).to_string(),
        None => serde_json::json!({"code": code}).to_string(),
    })
}

fn rows_of(events: &[EventEnvelope]) -> BatchRows {
    let mut r = BatchRows::default();
    for e in events {
        let b = e.booking_id.0;
        let at = e.occurred_at.0;
        r.zone_allocations.extend(zones::taken_by(e));
        let mut transition =
            |status: BookingStatus, reason: Option<String>, pi: Option<&String>| {
                // A decline earlier in the batch stays recorded.
                let decline_reason = r.transitions.get(&b).and_then(|t| t.decline_reason.clone());
                r.transitions.insert(
                    b,
                    Transition {
                        status: status.as_str(),
                        reason,
                        // An attempt the gateway refused has no payment id.
                        payment_id: pi.filter(|p| !p.is_empty()).cloned(),
                        decline_reason,
                        at,
                    },
                );
            };
        match &e.event {
            Event::BookingHeld {
                user_id,
                seats,
                amount,
                currency,
                hold_expires_at,
                payment_method,
                zones: places,
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
                n.zones.push(zones::json(places));
                for s in seats {
                    r.allocations.push((b, e.show_id.0, s.as_str().to_owned()));
                }
                r.seats_end.insert(b, None);
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
                n.zones.push("[]".into());
            }
            Event::BookingExpired { .. } => {
                transition(BookingStatus::Expired, reason("hold_expired", None), None);
                r.seats_end.insert(b, Some(at));
            }
            Event::HoldReleased { reason: why, .. } => {
                transition(BookingStatus::Failed, reason("released", Some(why)), None);
                r.seats_end.insert(b, Some(at));
            }
            Event::PaymentPending { payment_id } => {
                transition(BookingStatus::PaymentPending, None, Some(payment_id));
            }
            Event::PaymentDeclined {
                payment_id,
                reason: why,
            } => {
                // Held again, seats kept: nothing to release.
                transition(BookingStatus::Held, None, Some(payment_id));
                if let Some(t) = r.transitions.get_mut(&b) {
                    t.decline_reason = Some(why.clone());
                }
            }
            Event::BookingReleased { .. } => {
                transition(BookingStatus::Released, reason("released", None), None);
                r.seats_end.insert(b, Some(at));
            }
            Event::BookingConfirmed {
                seats,
                payment_id,
                retaken,
                ..
            } => {
                // A re-take clears the reason the booking expired with.
                let why = retaken
                    .then(|| serde_json::json!({"code": "retaken_after_expiry"}).to_string());
                transition(BookingStatus::Confirmed, why, Some(payment_id));
                if *retaken {
                    for s in seats {
                        r.allocations.push((b, e.show_id.0, s.as_str().to_owned()));
                    }
                    r.seats_end.insert(b, None);
                }
            }
            Event::PaymentFailed {
                payment_id,
                reason: why,
                ..
            } => {
                transition(
                    BookingStatus::Failed,
                    reason("payment_failed", Some(why)),
                    Some(payment_id),
                );
                r.seats_end.insert(b, Some(at));
            }
            Event::LatePaymentRefused { .. } => {
                // The booking keeps its status; the saga refunds and a later
                // `BookingRefunded` moves it to `refunded`.
            }
            Event::BookingCancelled { .. } => {
                transition(BookingStatus::Cancelled, reason("cancelled", None), None);
                r.seats_end.insert(b, Some(at));
            }
            Event::BookingRefunded { .. } => {
                transition(BookingStatus::Refunded, None, None);
            }
            // Not a transition (the reminder sweep's, never the sequencer's).
            Event::ShowReminder { .. } => {}
        }
    }
    r
}

/// What a committed batch leaves for after the commit.
#[derive(Debug, Default)]
pub struct Committed {
    /// The events to publish.
    pub outbox: Vec<OutboxRow>,
    /// Each show the batch changed, with the highest `booking_events.seq` it wrote:
    /// the version of the show's seat map as this commit leaves it.
    pub versions: HashMap<ShowId, i64>,
}

/// Commits one batch in one transaction: the epoch fence, new bookings, transitions,
/// seat releases then allocations, the event log, the inbox and the outbox.
/// Returns the outbox rows to publish and the seat-map version of each show changed.
#[tracing::instrument(skip_all, fields(partition = p, epoch, events = events.len()))]
pub async fn commit_batch(
    pool: &PgPool,
    p: u16,
    epoch: i64,
    exchange: &str,
    message_ids: &[Uuid],
    events: &[EventEnvelope],
) -> Result<Committed, StoreError> {
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
                                   payment_method, hold_expires_at, reason, created_at, updated_at,
                                   zones)
             select u.id, u.user_id, u.show_id, u.status, string_to_array(u.seats, ','), u.amount,
                    u.currency, u.pm, to_timestamp(u.exp / 1000.0), u.reason::jsonb,
                    to_timestamp(u.at / 1000.0), to_timestamp(u.at / 1000.0), u.zones::jsonb
               from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int8[],
                           $7::text[], $8::text[], $9::int8[], $10::text[], $11::int8[], $12::text[])
                    as u(id, user_id, show_id, status, seats, amount, currency, pm, exp, reason, at,
                         zones)
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
        .bind(&n.zones)
        .execute(&mut *tx)
        .await?;
    }

    if !rows.transitions.is_empty() {
        let ids: Vec<Uuid> = rows.transitions.keys().copied().collect();
        let status: Vec<&str> = rows.transitions.values().map(|t| t.status).collect();
        let reason: Vec<Option<&str>> = rows
            .transitions
            .values()
            .map(|t| t.reason.as_deref())
            .collect();
        let payment: Vec<Option<&str>> = rows
            .transitions
            .values()
            .map(|t| t.payment_id.as_deref())
            .collect();
        let declined: Vec<Option<&str>> = rows
            .transitions
            .values()
            .map(|t| t.decline_reason.as_deref())
            .collect();
        let at: Vec<i64> = rows.transitions.values().map(|t| t.at).collect();
        sqlx::query(
            "update bookings b
                set status = u.status,
                    reason = coalesce(u.reason::jsonb, b.reason),
                    payment_id = coalesce(u.payment_id, b.payment_id),
                    decline_reason = coalesce(u.declined, b.decline_reason),
                    updated_at = to_timestamp(u.at / 1000.0)
               from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[])
                    as u(id, status, reason, payment_id, at, declined)
              where b.id = u.id",
        )
        .bind(&ids)
        .bind(&status)
        .bind(&reason)
        .bind(&payment)
        .bind(&at)
        .bind(&declined)
        .execute(&mut *tx)
        .await?;
    }

    // Seats of bookings that end this batch released are released first, so that
    // they are free in the database before this batch's allocations go in.
    let released: Vec<(Uuid, i64)> = rows
        .seats_end
        .iter()
        .filter_map(|(b, end)| end.map(|at| (*b, at)))
        .collect();
    if !released.is_empty() {
        let ids: Vec<Uuid> = released.iter().map(|r| r.0).collect();
        let at: Vec<i64> = released.iter().map(|r| r.1).collect();
        sqlx::query(
            "update booking_seats s set released_at = to_timestamp(u.at / 1000.0)
               from unnest($1::uuid[], $2::int8[]) as u(booking_id, at)
              where s.booking_id = u.booking_id and s.released_at is null",
        )
        .bind(&ids)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        zones::release(&mut tx, &ids, &at).await?;
    }

    let zone_released: Vec<Option<i64>> = rows
        .zone_allocations
        .iter()
        .map(|a| rows.seats_end.get(&a.0).copied().flatten())
        .collect();
    zones::allocate(&mut tx, &rows.zone_allocations, &zone_released).await?;

    if !rows.allocations.is_empty() {
        let booking: Vec<Uuid> = rows.allocations.iter().map(|a| a.0).collect();
        let show: Vec<Uuid> = rows.allocations.iter().map(|a| a.1).collect();
        let seat: Vec<&str> = rows.allocations.iter().map(|a| a.2.as_str()).collect();
        // Stored as the batch leaves them: released if released later in the batch.
        let released: Vec<Option<i64>> = rows
            .allocations
            .iter()
            .map(|a| rows.seats_end.get(&a.0).copied().flatten())
            .collect();
        // The conflict target is the primary key only (a re-take revives its own
        // rows): a second live allocation of a seat still fails loudly on the
        // partial unique index.
        sqlx::query(
            "insert into booking_seats (booking_id, show_id, seat_id, released_at)
             select u.b, u.s, u.seat, to_timestamp(u.rel / 1000.0)
               from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int8[]) as u(b, s, seat, rel)
             on conflict (booking_id, seat_id) do update set released_at = excluded.released_at",
        )
        .bind(&booking)
        .bind(&show)
        .bind(&seat)
        .bind(&released)
        .execute(&mut *tx)
        .await?;
    }

    let mut outbox = Vec::new();
    let mut versions = HashMap::new();
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
        let seqs: Vec<(Uuid, i64)> = sqlx::query_as(
            "insert into booking_events (id, booking_id, show_id, type, payload, caused_by, occurred_at)
             select u.id, u.b, u.s, u.t, u.p::jsonb, u.c, to_timestamp(u.at / 1000.0)
               from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::uuid[], $7::int8[])
                    with ordinality as u(id, b, s, t, p, c, at, ord)
              order by u.ord
             returning show_id, seq",
        )
        .bind(&id)
        .bind(&booking)
        .bind(&show)
        .bind(&kind)
        .bind(&payload)
        .bind(&caused_by)
        .bind(&at)
        .fetch_all(&mut *tx)
        .await?;
        for (show, seq) in seqs {
            let v = versions.entry(ShowId(show)).or_insert(seq);
            *v = (*v).max(seq);
        }
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
                trace: e.trace,
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
    Ok(Committed { outbox, versions })
}
