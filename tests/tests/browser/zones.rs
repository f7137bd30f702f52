//! A buyer books standing places with a seat (the demo concert's mixed layout): the
//! zone shows its places left, the quantity picker is labelled, the hold names both,
//! and the places left drop.

use crate::buyer::register_inline;
use crate::driver::Chromedriver;
use contracts::ShowId;
use serde_json::json;
use tests::{SystemOptions, spawn_system};

#[tokio::test]
async fn a_buyer_books_three_standing_places_with_a_seat_and_sees_the_places_left_drop() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = seed::create_concert(&sys.pool, ShowId::new_v7(), time::Duration::days(1))
        .await
        .unwrap();
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 900).await;
    b.goto(&format!("/shows/{show}")).await;
    b.text_contains("#zone-floor", "Standing floor").await;
    b.text_contains("#zone-left-floor", "500 places left").await;
    // The picker is a labelled control.
    let label = b
        .js(
            "const l = document.querySelector(\"label[for='zone-qty-floor']\");
             return l && document.getElementById('zone-qty-floor') ? l.innerText : null;",
            vec![],
        )
        .await;
    assert_eq!(label, json!("Places"));
    b.js(
        "const s = document.getElementById('zone-qty-floor'); s.value = '3';
         s.dispatchEvent(new Event('change'));",
        vec![],
    )
    .await;
    b.click("button.seat[data-seat='A1']").await;
    b.click("#zone-book-floor").await;
    register_inline(&b, "zones").await;
    b.find("#pay").await;
    b.text_contains("#checkout-status", "Seat A1 and 3 places in floor")
        .await;
    b.text_contains("#zone-left-floor", "497 places left").await;
    b.screenshot("zones-held").await;
    let taken: i32 =
        sqlx::query_scalar("select taken from show_zones where show_id = $1 and zone_id = 'floor'")
            .bind(show.0)
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    assert_eq!(taken, 3);
    b.close().await;
    sys.shutdown().await;
}
