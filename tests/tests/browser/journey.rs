//! The buyer gives seats back in a real browser: "Release seats" on the booking
//! page of a held booking frees them at once (the seat map shows them available)
//! and the booking reads "Released".

use crate::buyer::hold_as_new_buyer;
use crate::cinema;
use crate::driver::Chromedriver;
use tests::{SystemOptions, spawn_system};

#[tokio::test]
async fn releasing_a_held_booking_on_its_page_frees_the_seats_at_once() {
    let sys = spawn_system(SystemOptions::default()).await;
    let c = cinema(&sys, "Arrival", "Pune").await;
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 900).await;
    b.goto(&format!("/shows/{}", c.show)).await;
    hold_as_new_buyer(&b, &["E5", "E6"], "release").await;
    let id: uuid::Uuid = sqlx::query_scalar("select id from bookings where show_id = $1")
        .bind(c.show.0)
        .fetch_one(&sys.pool)
        .await
        .unwrap();

    // The booking page of a held booking: pay or give the seats back.
    b.goto(&format!("/bookings/{id}")).await;
    b.text_contains("#booking-status", "Seats held").await;
    b.find("#pay").await;
    b.screenshot("booking-held").await;
    b.click("#release").await;
    b.text_contains("#booking-status", "Released").await;
    b.text_contains("#booking-outcome", "back on sale").await;
    let (_, seats) = sys.get(&format!("/v1/shows/{}/seats", c.show)).await;
    let e5 = seats["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["seats"].as_array().unwrap().iter())
        .find(|s| s["id"] == "E5")
        .unwrap()
        .clone();
    assert_eq!(e5["status"], "available", "{e5}");
    // Another visit to the show sees them free.
    b.goto(&format!("/shows/{}", c.show)).await;
    b.until(
        "E5 to show available",
        "return document.querySelector(\"button.seat[data-seat='E5']\")?.getAttribute('aria-label')?.endsWith('available')",
        vec![],
    )
    .await;
    b.assert_only_own_origin().await;
    b.close().await;
    sys.shutdown().await;
}
