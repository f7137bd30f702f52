//! The demo concert: a hall with 200 numbered seats and a 500-place standing floor
//! (general admission), bookable together in one booking (`mixed_booking`). The run
//! command seeds it beside the demo movie, and the zones end-to-end test uses the
//! same layout.

use crate::show::{NewShow, create_show, theater_layout};
use contracts::{LayoutZone, Price, ScreenLayout, ShowId};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// The demo concert's fixed id.
pub const DEMO_CONCERT: ShowId = ShowId(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002));

/// The standing floor's id and capacity.
pub const FLOOR: &str = "floor";
pub const FLOOR_CAPACITY: u32 = 500;

/// 10 rows of 20 seats ([`theater_layout`]'s types) and the standing floor.
pub fn concert_layout() -> ScreenLayout {
    let mut layout = theater_layout(10, 20);
    layout.zones = vec![LayoutZone {
        id: FLOOR.to_owned(),
        name: "Standing floor".to_owned(),
        capacity: FLOOR_CAPACITY,
        seat_type: "standing".to_owned(),
    }];
    layout.mixed_booking = true;
    layout
}

/// [`crate::inr_prices`] and a standing place.
pub fn concert_prices() -> Vec<Price> {
    let mut prices = crate::inr_prices();
    prices.push(Price {
        seat_type: "standing".to_owned(),
        amount: 15_000,
        currency: "INR".to_owned(),
    });
    prices
}

/// Creates (or moves forward) a concert of [`concert_layout`] as `show_id`, a
/// `concert` event in Mumbai starting in `starts_in`.
pub async fn create_concert(
    pool: &PgPool,
    show_id: ShowId,
    starts_in: time::Duration,
) -> anyhow::Result<ShowId> {
    let show = create_show(
        pool,
        &NewShow {
            show_id,
            layout: concert_layout(),
            prices: concert_prices(),
            starts_at: OffsetDateTime::now_utc() + starts_in,
            city: "Mumbai".to_owned(),
            theater: "Demo Arena, Worli".to_owned(),
            movie: "Open Air Night".to_owned(),
        },
    )
    .await?;
    // `create_show` names the event like a movie; this one is a concert.
    sqlx::query("update movies set kind = 'concert', genres = '{live}' where id = $1")
        .bind(Uuid::new_v5(&show_id.0, b"movie"))
        .execute(pool)
        .await?;
    Ok(show)
}

/// The demo concert, starting tomorrow.
pub async fn demo_concert(pool: &PgPool) -> anyhow::Result<ShowId> {
    create_concert(pool, DEMO_CONCERT, time::Duration::days(1)).await
}
