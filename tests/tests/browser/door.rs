//! The door: staff scoped to the theater sign in on `/door`, paste a ticket code
//! and see CHECKED IN with the seats; the same code again says when and at which
//! gate it was first checked in; axe-core finds nothing serious.

use crate::access::assert_accessible;
use crate::cinema;
use crate::driver::Chromedriver;
use crate::ops::staff_account;
use auth::Role;
use serde_json::json;
use tests::{SystemOptions, TestSystem, spawn_system};

/// A confirmed booking of D5 and D6 on `show`; its ticket token.
async fn paid_ticket(sys: &TestSystem, show: &str) -> String {
    let (_, customer) = sys.customer(1).await;
    let body = json!({"show_id": show, "seats": ["D5", "D6"], "payment_method": "pm_card_ok"});
    let (status, accepted) = sys.submit(&customer, "door-page", body).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    sys.booking_until(&customer, &id, "confirmed", |b| b["status"] == "confirmed")
        .await;
    let (_, t) = sys
        .call(
            reqwest::Method::GET,
            &format!("/v1/bookings/{id}/ticket"),
            Some(&customer),
            None,
        )
        .await;
    t["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn door_staff_check_a_ticket_in_and_a_second_scan_says_when_and_where() {
    let sys = spawn_system(SystemOptions::default()).await;
    let c = cinema(&sys, "Heat", "Pune").await;
    let token = paid_ticket(&sys, &c.show.to_string()).await;
    let (email, password) = staff_account(&sys, "staff").await;
    let theater: uuid::Uuid = sqlx::query_scalar(
        "select sc.theater_id from shows s join screens sc on sc.id = s.screen_id where s.id = $1",
    )
    .bind(c.show.0)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    bookctl::users::grant(&sys.pool, &email, Role::Staff, theater)
        .await
        .unwrap();

    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 1000).await;
    b.goto("/door").await;
    b.fill("#acc-email", &email).await;
    b.fill("#acc-password", &password).await;
    b.click("form.auth button[type=submit]").await;
    b.fill("#token", &token).await;
    b.fill("#gate", "North 2").await;
    b.click("#check-in").await;
    let ok = b.text_contains("#verdict", "CHECKED IN").await;
    assert!(ok.contains("Seats D5, D6"), "{ok}");
    b.screenshot("door-checked-in").await;
    assert_accessible(&b, "door: checked in").await;

    // The second scan of the same code, at another gate.
    b.fill("#gate", "South").await;
    b.click("#check-in").await;
    let again = b.text_contains("#verdict", "ALREADY CHECKED IN").await;
    assert!(again.contains("gate North 2"), "{again}");
    b.screenshot("door-already").await;
    assert_accessible(&b, "door: already checked in").await;
    let rows: i64 = sqlx::query_scalar("select count(*) from checkins")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    b.close().await;
    sys.shutdown().await;
}
