//! Live seat maps: from Redis, where the sequencer runner writes them after each
//! commit, rebuilt from PostgreSQL when missing.

use crate::problem::ApiError;
use contracts::ShowId;
use platform::cache::Redis;
use platform::seatmap::{self, SeatMap};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashSet;
use utoipa::ToSchema;

/// What a buyer sees of a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    Available,
    /// Held by a booking that is not paid yet (it may come free again).
    Held,
    Sold,
    /// Not for sale.
    Blocked,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeatView {
    pub id: String,
    #[serde(rename = "type")]
    pub seat_type: String,
    /// Price in minor units of `currency` a hold would pay now (demand pricing
    /// applied); null when the show sells no seats of this type.
    pub price: Option<i64>,
    pub status: SeatState,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeatRowView {
    pub row: String,
    pub seats: Vec<SeatView>,
    /// Seat numbers after which an aisle (or gap) runs: a map draws an empty column
    /// there.
    pub aisles_after: Vec<u16>,
}

/// A general-admission zone of the show: places counted, not numbered.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneView {
    /// What a booking names (`{"zone": "floor", "quantity": 2}`).
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub seat_type: String,
    /// Price of one place in minor units of `currency`; null when the show sells
    /// no places of this type.
    pub price: Option<i64>,
    pub capacity: u32,
    /// Places neither held nor sold.
    pub available: u32,
}

/// The live seat map of a show.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"show_id": "0193a000-0000-7000-8000-000000000002", "version": 42, "currency": "INR", "rows": [{"row": "A", "aisles_after": [], "seats": [{"id": "A1", "type": "regular", "price": 20000, "status": "available"}, {"id": "A2", "type": "regular", "price": 20000, "status": "sold"}]}], "zones": [{"id": "floor", "name": "Standing floor", "type": "standing", "price": 15000, "capacity": 500, "available": 498}], "mixed_booking": false}))]
pub struct SeatMapView {
    pub show_id: ShowId,
    /// Grows with every change of the show's seats; a map with a higher version is
    /// newer.
    pub version: i64,
    /// Currency of the prices; null when the show has no prices.
    pub currency: Option<String>,
    /// Rows from the front to the back, seats from left to right.
    pub rows: Vec<SeatRowView>,
    /// General-admission zones with their places left, in layout order; empty
    /// when the layout has none.
    pub zones: Vec<ZoneView>,
    /// Whether one booking may combine chosen seats and zone places.
    pub mixed_booking: bool,
}

/// The map from Redis, or rebuilt from PostgreSQL (and stored) when Redis has none.
/// Redis being down only costs the rebuild.
pub async fn current(
    db: &PgPool,
    redis: &Redis,
    key: String,
    ttl_secs: u64,
    show: ShowId,
) -> Result<SeatMap, ApiError> {
    let mut redis = redis.clone();
    match seatmap::load(&mut redis, &key).await {
        Ok(Some(map)) => return Ok(map),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "redis unavailable; seat map read from PostgreSQL"),
    }
    metrics::counter!("seatmap_rebuilds_total").increment(1);
    let map = seatmap::rebuild(db, show).await?;
    if let Err(e) = seatmap::store_if_newer(&mut redis, &[(key, &map)], ttl_secs).await {
        tracing::warn!(error = %e, "rebuilt seat map not stored");
    }
    Ok(map)
}

/// The demand-pricing change (thousandths) a hold would get now: the same rule as
/// the sequencer's (`contracts::pricing`), on the map's occupancy.
fn price_change(
    show: &crate::shows::CachedShow,
    map: &SeatMap,
    held: &HashSet<&str>,
    sold: &HashSet<&str>,
) -> i32 {
    let Some(pricing) = &show.info.pricing else {
        return 0;
    };
    let layout = &show.screen.layout;
    let (mut taken, mut capacity) = (0u64, 0u64);
    for row in &layout.rows {
        for seat in &row.seats {
            let id = format!("{}{}", row.row, seat.number);
            let occupied = held.contains(id.as_str()) || sold.contains(id.as_str());
            let blocked = seat.blocked || show.info.blocked_seats.contains(&id);
            capacity += u64::from(!blocked || occupied);
            taken += u64::from(occupied);
        }
    }
    for z in &layout.zones {
        capacity += u64::from(z.capacity);
        taken += u64::from(map.zone_taken(&z.id).min(z.capacity));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let to_start = show.info.starts_at.0.saturating_sub(now as i64);
    pricing.change_permille(taken, capacity, Some(to_start))
}

/// What a buyer sees of `map`: every seat of the show's layout with its price (the
/// current demand price, when the show has pricing) and status.
pub fn view(show: &crate::shows::CachedShow, map: SeatMap) -> SeatMapView {
    let held: HashSet<&str> = map.held.iter().map(String::as_str).collect();
    let sold: HashSet<&str> = map.sold.iter().map(String::as_str).collect();
    let prices = &show.info.prices;
    let change = price_change(show, &map, &held, &sold);
    let price_of = |t: &str| {
        prices
            .iter()
            .find(|p| p.seat_type == t)
            .map(|p| contracts::pricing::adjust(p.amount, change))
    };
    let rows = show
        .screen
        .layout
        .rows
        .iter()
        .map(|row| SeatRowView {
            row: row.row.clone(),
            aisles_after: row.aisles_after.clone(),
            seats: row
                .seats
                .iter()
                .map(|seat| {
                    let id = format!("{}{}", row.row, seat.number);
                    // An occupied seat shows its occupant's status, as in the sequencer.
                    let status = if sold.contains(id.as_str()) {
                        SeatState::Sold
                    } else if held.contains(id.as_str()) {
                        SeatState::Held
                    } else if seat.blocked || show.info.blocked_seats.contains(&id) {
                        SeatState::Blocked
                    } else {
                        SeatState::Available
                    };
                    SeatView {
                        price: price_of(&seat.seat_type),
                        seat_type: seat.seat_type.clone(),
                        id,
                        status,
                    }
                })
                .collect(),
        })
        .collect();
    let layout = &show.screen.layout;
    let zones = layout
        .zones
        .iter()
        .map(|z| ZoneView {
            id: z.id.clone(),
            name: z.name.clone(),
            seat_type: z.seat_type.clone(),
            price: price_of(&z.seat_type),
            capacity: z.capacity,
            available: z.capacity.saturating_sub(map.zone_taken(&z.id)),
        })
        .collect();
    SeatMapView {
        show_id: show.info.show_id,
        version: map.version,
        currency: prices.first().map(|p| p.currency.clone()),
        rows,
        zones,
        mixed_booking: layout.mixed_booking,
    }
}
