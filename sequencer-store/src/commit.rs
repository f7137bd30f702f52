//! One batch's commit: everything the batch's events change, written in one
//! transaction behind the partition's epoch fence.

use crate::fence::{PartitionRef, Successor};
use crate::{StoreError, zones};
use contracts::{BookingStatus, Event, EventEnvelope, SeatId, ShowId};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

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
#[tracing::instrument(skip_all, fields(epoch, events = events.len()))]
pub async fn commit_batch(
    pool: &PgPool,
    p: impl Into<PartitionRef>,
    epoch: i64,
    exchange: &str,
    message_ids: &[Uuid],
    events: &[EventEnvelope],
) -> Result<Committed, StoreError> {
    let p = p.into();
    let (_, part) = p.keys();
    let rows = rows_of(events);
    let mut tx = pool.begin().await?;
    fence(&mut tx, p, epoch, message_ids.len()).await?;
    insert_new(&mut tx, &rows.new).await?;
    apply_transitions(&mut tx, &rows.transitions).await?;
    release_then_allocate(&mut tx, &rows).await?;
    let committed = log_events(&mut tx, exchange, events).await?;
    sqlx::query(
        "insert into processed_messages (message_id, partition)
         select unnest($1::uuid[]), $2 on conflict do nothing",
    )
    .bind(message_ids)
    .bind(part)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(committed)
}

/// Records that `p`'s runner reached the seal marker of its partition (every
/// command before it is committed), fenced by its epoch like a batch. Recording it
/// again is a no-op.
pub async fn seal_partition(
    pool: &PgPool,
    p: PartitionRef,
    epoch: i64,
    next: Successor,
    owner: &str,
) -> Result<(), StoreError> {
    let (generation, partition) = p.keys();
    let mut tx = pool.begin().await?;
    fence(&mut tx, p, epoch, 0).await?;
    sqlx::query(
        "insert into partition_seals
                (generation, partition, next_generation, next_partitions, owner)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
    )
    .bind(generation)
    .bind(partition)
    .bind(i16::try_from(next.generation).unwrap_or(i16::MAX))
    .bind(i16::try_from(next.partitions).unwrap_or(i16::MAX))
    .bind(owner)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The fence: this runner's epoch must still be the partition's. Also locks the
/// partition row, so a takeover waits for this commit.
async fn fence(
    tx: &mut Transaction<'_, Postgres>,
    p: PartitionRef,
    epoch: i64,
    messages: usize,
) -> Result<(), StoreError> {
    let (generation, partition) = p.keys();
    let fenced = sqlx::query(
        "update partitions set last_batch_at = now(), last_batch_size = $4
          where generation = $1 and partition = $2 and epoch = $3",
    )
    .bind(generation)
    .bind(partition)
    .bind(epoch)
    .bind(i32::try_from(messages).unwrap_or(i32::MAX))
    .execute(&mut **tx)
    .await?;
    if fenced.rows_affected() != 1 {
        return Err(StoreError::Fenced {
            partition: p.partition,
            epoch,
        });
    }
    Ok(())
}

/// Bookings decided for the first time (held or rejected).
async fn insert_new(tx: &mut Transaction<'_, Postgres>, n: &NewBookings) -> Result<(), StoreError> {
    if n.id.is_empty() {
        return Ok(());
    }
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Each booking's last transition of the batch.
async fn apply_transitions(
    tx: &mut Transaction<'_, Postgres>,
    transitions: &BTreeMap<Uuid, Transition>,
) -> Result<(), StoreError> {
    if transitions.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = transitions.keys().copied().collect();
    let status: Vec<&str> = transitions.values().map(|t| t.status).collect();
    let reason: Vec<Option<&str>> = transitions.values().map(|t| t.reason.as_deref()).collect();
    let payment: Vec<Option<&str>> = transitions
        .values()
        .map(|t| t.payment_id.as_deref())
        .collect();
    let declined: Vec<Option<&str>> = transitions
        .values()
        .map(|t| t.decline_reason.as_deref())
        .collect();
    let at: Vec<i64> = transitions.values().map(|t| t.at).collect();
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Seats and zone places: those of bookings that end this batch released are
/// released first, so that they are free in the database before this batch's
/// allocations go in.
async fn release_then_allocate(
    tx: &mut Transaction<'_, Postgres>,
    rows: &BatchRows,
) -> Result<(), StoreError> {
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
        .execute(&mut **tx)
        .await?;
        zones::release(tx, &ids, &at).await?;
    }

    let zone_released: Vec<Option<i64>> = rows
        .zone_allocations
        .iter()
        .map(|a| rows.seats_end.get(&a.0).copied().flatten())
        .collect();
    zones::allocate(tx, &rows.zone_allocations, &zone_released).await?;

    if rows.allocations.is_empty() {
        return Ok(());
    }
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The event log and the outbox, in the batch's order. Returns the outbox rows to
/// publish and each changed show's highest event sequence (its seat-map version).
async fn log_events(
    tx: &mut Transaction<'_, Postgres>,
    exchange: &str,
    events: &[EventEnvelope],
) -> Result<Committed, StoreError> {
    let mut committed = Committed::default();
    if events.is_empty() {
        return Ok(committed);
    }
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
    .fetch_all(&mut **tx)
    .await?;
    for (show, seq) in seqs {
        let v = committed.versions.entry(ShowId(show)).or_insert(seq);
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
    .fetch_all(&mut **tx)
    .await?;
    let by_event: HashMap<Uuid, i64> = ids.into_iter().map(|(i, e)| (e, i)).collect();
    for (e, p) in events.iter().zip(payload) {
        committed.outbox.push(OutboxRow {
            id: by_event.get(&e.event_id.0).copied().unwrap_or_default(),
            exchange: exchange.to_owned(),
            routing_key: e.event.routing_key().to_owned(),
            payload: p.into_bytes(),
            event_id: e.event_id.0,
            trace: e.trace,
        });
    }
    Ok(committed)
}
