//! Browser tests of the web app: headless Chromium (Debian's `chromium`, driven
//! through `chromedriver` over WebDriver) against the real platform from
//! `spawn_system` on port 0. Each test starts its own chromedriver and saves its
//! screenshots under `<target>/screenshots/` (a current set is committed in
//! `docs/screenshots/`).
//!
//! - [`buyer`]: the whole journey to a ticket that verifies, a declined card, and
//!   two browsers racing for one seat.
//! - [`access`]: keyboard only, axe-core on every buyer page, a 375 px wide seat
//!   page, and no request to any other host (the pages and `/docs`).
//! - [`ops`]: an operator dry-runs and replays a dead letter on `/ops`.
//! - [`admin`]: an admin reads a show's sales and cancels it after confirming.
//! - [`weight`] (ignored, a benchmark: `scripts/bench-web.sh`): first paint, the
//!   seat map interactive, and the JavaScript and CSS shipped per page.
//! - [`schedule`]: an admin draws a screen in the layout editor, schedules a show
//!   on its week, and an overlapping show is refused with the API's words.
//! - [`door`]: door staff check a ticket in; a second scan says when and where.
//! - [`mfa`]: an admin turns two-step sign-in on and signs in with a code.
//! - [`phone`]: a buyer verifies a phone with the SMS code on `/account` and
//!   chooses email and SMS for booking messages.
//! - [`events`]: a concert under its kind on home, its event page and seat page in
//!   the theater's local time with the zone.
//! - [`zones`]: a buyer books standing places with a seat; the places left drop.

mod access;
mod admin;
mod buyer;
mod door;
mod driver;
mod events;
mod journey;
mod mfa;
mod ops;
mod phone;
mod schedule;
mod weight;
mod zones;

use contracts::{LayoutRow, LayoutSeat, Price, ScreenLayout, ShowId};
use tests::TestSystem;

/// A movie with one show on a screen drawn like a real one: rows A-H front to back,
/// 14 seats each with aisles after seats 3 and 11, rows G and H premium, seat C7
/// blocked.
pub struct Cinema {
    pub movie: uuid::Uuid,
    pub show: ShowId,
}

pub const REGULAR_PRICE: i64 = 25_000;
pub const PREMIUM_PRICE: i64 = 40_000;

pub async fn cinema(sys: &TestSystem, title: &str, city: &str) -> Cinema {
    let movie = sys
        .movie(
            title,
            &["sci-fi", "drama"],
            &["Matthew McConaughey", "Anne Hathaway"],
        )
        .await;
    let rows = ["A", "B", "C", "D", "E", "F", "G", "H"]
        .into_iter()
        .map(|row| LayoutRow {
            row: row.into(),
            seats: (1..=14)
                .map(|number| LayoutSeat {
                    number,
                    seat_type: if row >= "G" { "premium" } else { "regular" }.into(),
                    blocked: row == "C" && number == 7,
                })
                .collect(),
            aisles_after: vec![3, 11],
        })
        .collect();
    let show_id = ShowId::new_v7();
    let show = sys
        .show_of_movie(
            movie,
            &seed::NewShow {
                show_id,
                layout: ScreenLayout {
                    rows,
                    focal_point: None,
                    zones: vec![],
                    mixed_booking: false,
                },
                prices: vec![
                    Price {
                        seat_type: "regular".into(),
                        amount: REGULAR_PRICE,
                        currency: "INR".into(),
                    },
                    Price {
                        seat_type: "premium".into(),
                        amount: PREMIUM_PRICE,
                        currency: "INR".into(),
                    },
                ],
                starts_at: time::OffsetDateTime::now_utc() + time::Duration::days(1),
                city: city.into(),
                theater: format!("Galaxy {city}"),
                movie: format!("stand-in {}", uuid::Uuid::now_v7()),
            },
        )
        .await;
    Cinema { movie, show }
}

/// A fresh email for a buyer who registers in the browser.
pub fn new_email(who: &str) -> String {
    format!("{who}-{}@example.com", uuid::Uuid::now_v7().simple())
}
