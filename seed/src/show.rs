//! One show at a time: the demo theater of the run command, and shows of a given
//! size for tests and benchmarks.

use contracts::{LayoutRow, LayoutSeat, Price, ScreenLayout, ShowId, layout::row_label};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A show to create.
pub struct NewShow {
    pub show_id: ShowId,
    pub layout: ScreenLayout,
    pub prices: Vec<Price>,
    pub starts_at: OffsetDateTime,
    pub city: String,
    pub theater: String,
    pub movie: String,
}

/// Creates a theater, a screen, a movie and a show with its prices (or refreshes the
/// show's start time and layout if it exists). One show per screen keeps schedules
/// trivially free of overlaps.
pub async fn create_show(pool: &PgPool, s: &NewShow) -> anyhow::Result<ShowId> {
    s.layout
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid layout: {e}"))?;
    let ns = s.show_id.0;
    let theater = Uuid::new_v5(&ns, b"theater");
    let screen = Uuid::new_v5(&ns, b"screen");
    let movie = Uuid::new_v5(&ns, b"movie");
    let seat_count = i32::try_from(s.layout.seats().count())?;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into theaters (id, name, city, address) values ($1, $2, $3, '')
         on conflict (id) do nothing",
    )
    .bind(theater)
    .bind(&s.theater)
    .bind(&s.city)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into screens (id, theater_id, name, layout, seat_count)
         values ($1, $2, 'Screen 1', $3, $4)
         on conflict (id) do update set layout = excluded.layout, seat_count = excluded.seat_count",
    )
    .bind(screen)
    .bind(theater)
    .bind(sqlx::types::Json(&s.layout))
    .bind(seat_count)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into movies (id, title, genres, cast_members, duration_min, rating, language, synopsis)
         values ($1, $2, '{drama}', '{}', 120, 'UA', 'English', 'A seeded movie.')
         on conflict (id) do nothing",
    )
    .bind(movie)
    .bind(&s.movie)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into shows (id, movie_id, screen_id, starts_at, ends_at, status)
         values ($1, $2, $3, $4, $4 + interval '150 minutes', 'on_sale')
         on conflict (id) do update set starts_at = excluded.starts_at, ends_at = excluded.ends_at",
    )
    .bind(ns)
    .bind(movie)
    .bind(screen)
    .bind(s.starts_at)
    .execute(&mut *tx)
    .await?;
    for p in &s.prices {
        sqlx::query(
            "insert into show_prices (show_id, seat_type, amount, currency) values ($1, $2, $3, $4)
             on conflict (show_id, seat_type) do update set amount = excluded.amount, currency = excluded.currency",
        )
        .bind(ns)
        .bind(&p.seat_type)
        .bind(p.amount)
        .bind(&p.currency)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(s.show_id)
}

/// A realistic screen: `rows` rows of `per_row` seats, an aisle a quarter of the way
/// in from each side, the front rows `regular`, the middle `premium`, the last two
/// `recliner`.
pub fn theater_layout(rows: usize, per_row: u16) -> ScreenLayout {
    let aisle_left = (per_row / 4).max(1);
    let aisle_right = per_row.saturating_sub(per_row / 4).max(aisle_left + 1);
    ScreenLayout {
        rows: (0..rows)
            .map(|i| {
                let seat_type = if i + 2 >= rows && rows > 3 {
                    "recliner"
                } else if i >= rows / 3 {
                    "premium"
                } else {
                    "regular"
                };
                LayoutRow {
                    row: row_label(i),
                    seats: (1..=per_row)
                        .map(|n| LayoutSeat {
                            number: n,
                            seat_type: seat_type.to_owned(),
                            blocked: false,
                        })
                        .collect(),
                    aisles_after: if per_row >= 8 {
                        vec![aisle_left, aisle_right]
                    } else {
                        vec![]
                    },
                }
            })
            .collect(),
        focal_point: None,
        zones: vec![],
        mixed_booking: false,
    }
}

/// Prices in INR paise for the three seat types of [`theater_layout`].
pub fn inr_prices() -> Vec<Price> {
    [
        ("regular", 20_000),
        ("premium", 35_000),
        ("recliner", 60_000),
    ]
    .into_iter()
    .map(|(t, a)| Price {
        seat_type: t.to_owned(),
        amount: a,
        currency: "INR".to_owned(),
    })
    .collect()
}

/// The demo show's fixed id.
pub const DEMO_SHOW: ShowId = ShowId(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001));

/// The demo catalog: one theater in Mumbai with a 10 x 20 screen and a show that
/// starts tomorrow (moved forward each time the seed runs).
pub async fn demo(pool: &PgPool) -> anyhow::Result<ShowId> {
    create_show(
        pool,
        &NewShow {
            show_id: DEMO_SHOW,
            layout: theater_layout(10, 20),
            prices: inr_prices(),
            starts_at: OffsetDateTime::now_utc() + time::Duration::days(1),
            city: "Mumbai".to_owned(),
            theater: "Demo Cinema, Bandra".to_owned(),
            movie: "The Queue Must Go On".to_owned(),
        },
    )
    .await
}
