//! The runner's SQL for general-admission places: `booking_zones` rows taken and
//! given back in the batch's transaction. The trigger on `booking_zones` keeps
//! `show_zones.taken` and its CHECK refuses a zone over capacity, so an oversold
//! zone fails the whole commit (see the migration `20261209100000_zones.sql`).

use contracts::{Event, EventEnvelope, ZonePlaces};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// (booking, show, zone, quantity) places taken in a batch (holds and re-takes).
pub(crate) type ZoneAllocation = (Uuid, Uuid, String, i32);

/// The places an event takes: a hold's, or a late payment's re-take.
pub(crate) fn taken_by(e: &EventEnvelope) -> Vec<ZoneAllocation> {
    let zones: &[ZonePlaces] = match &e.event {
        Event::BookingHeld { zones, .. } => zones,
        Event::BookingConfirmed {
            zones,
            retaken: true,
            ..
        } => zones,
        _ => &[],
    };
    zones
        .iter()
        .map(|p| {
            (
                e.booking_id.0,
                e.show_id.0,
                p.zone.clone(),
                i32::try_from(p.quantity).unwrap_or(i32::MAX),
            )
        })
        .collect()
}

/// The JSON of a booking's places for `bookings.zones`.
pub(crate) fn json(zones: &[ZonePlaces]) -> String {
    serde_json::to_string(zones).unwrap_or_else(|_| "[]".into())
}

/// Gives back the live places of `bookings` at `at` (ms), one per booking.
pub(crate) async fn release(
    tx: &mut Transaction<'_, Postgres>,
    bookings: &[Uuid],
    at: &[i64],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update booking_zones z set released_at = to_timestamp(u.at / 1000.0)
           from unnest($1::uuid[], $2::int8[]) as u(booking_id, at)
          where z.booking_id = u.booking_id and z.released_at is null",
    )
    .bind(bookings)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes places: each row stored as the batch leaves it (`released`: ms when given
/// back later in the batch). A re-take revives the booking's own row.
pub(crate) async fn allocate(
    tx: &mut Transaction<'_, Postgres>,
    taken: &[ZoneAllocation],
    released: &[Option<i64>],
) -> Result<(), sqlx::Error> {
    if taken.is_empty() {
        return Ok(());
    }
    let booking: Vec<Uuid> = taken.iter().map(|a| a.0).collect();
    let show: Vec<Uuid> = taken.iter().map(|a| a.1).collect();
    let zone: Vec<&str> = taken.iter().map(|a| a.2.as_str()).collect();
    let quantity: Vec<i32> = taken.iter().map(|a| a.3).collect();
    sqlx::query(
        "insert into booking_zones (booking_id, show_id, zone_id, quantity, released_at)
         select u.b, u.s, u.z, u.q, to_timestamp(u.rel / 1000.0)
           from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int4[], $5::int8[])
                as u(b, s, z, q, rel)
         on conflict (booking_id, zone_id) do update set released_at = excluded.released_at",
    )
    .bind(&booking)
    .bind(&show)
    .bind(&zone)
    .bind(&quantity)
    .bind(released)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
