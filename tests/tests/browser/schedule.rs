//! The admin's schedule: a screen drawn in the layout editor (one seat blocked by a
//! press on the preview), a show put on that screen's week at a time on the
//! theater's clock, a second show overlapping the first refused with the API's own
//! words, a repeated schedule (two days at once), and the buyer's seat page showing
//! that layout and its prices.

use crate::access::assert_accessible;
use crate::cinema;
use crate::driver::{Browser, Chromedriver};
use crate::ops::staff_account;
use serde_json::json;
use tests::{SystemOptions, spawn_system};

/// Sets a date or time input (typing into them depends on the browser's locale).
async fn set_value(b: &Browser, css: &str, value: &str) {
    b.js(
        "const el = document.querySelector(arguments[0]); el.value = arguments[1];
         el.dispatchEvent(new Event('input', { bubbles: true }));",
        vec![json!(css), json!(value)],
    )
    .await;
}

#[tokio::test]
async fn an_admin_draws_a_screen_schedules_a_show_on_its_week_and_an_overlap_is_refused() {
    let sys = spawn_system(SystemOptions::default()).await;
    // A theater in Pune (Asia/Kolkata, +05:30) and the movie to schedule.
    let c = cinema(&sys, "Arrival", "Pune").await;
    let (email, password) = staff_account(&sys, "admin").await;
    // Two days ahead on the theater's clock, so the show is in the future and on
    // that day whatever the hour here.
    let day =
        (time::OffsetDateTime::now_utc() + time::Duration::minutes(330) + time::Duration::days(2))
            .date()
            .to_string();

    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 1100).await;
    b.goto("/admin").await;
    b.fill("#acc-email", &email).await;
    b.fill("#acc-password", &password).await;
    b.click("form.auth button[type=submit]").await;

    // The layout editor: 5 rows of 10 seats, an aisle after seat 5, the back row
    // premium; A1 blocked by pressing it on the preview.
    b.click("#add-screen summary").await;
    b.fill("#screen-name", "Screen 9").await;
    b.fill("#lay-rows", "5").await;
    b.fill("#lay-seats", "10").await;
    b.fill("#lay-aisles", "5").await;
    b.fill("#lay-back", "1").await;
    b.click("#layout-generate").await;
    b.text_contains(
        "#layout-summary",
        "5 rows, 50 seats (40 regular, 10 premium), 0 blocked",
    )
    .await;
    b.click("#layout-preview button[data-seat='A1']").await;
    b.text_contains("#layout-summary", "1 blocked: A1").await;
    b.screenshot("admin-layout-editor").await;
    assert_accessible(&b, "admin: layout editor").await;
    b.click("#screen-save").await;
    b.text_contains("#screen-outcome", "Screen 9 created with 50 seats")
        .await;
    let (screen, layout): (uuid::Uuid, serde_json::Value) =
        sqlx::query_as("select id, layout from screens where name = 'Screen 9'")
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    assert_eq!(layout["rows"][0]["seats"][0]["blocked"], json!(true));
    assert_eq!(layout["rows"][4]["seats"][9]["type"], json!("premium"));
    assert_eq!(layout["rows"][2]["aisles_after"], json!([5]));

    // The calendar is on the new screen; the movie found by part of its title.
    b.text_contains("#sched-screen", "Screen 9").await;
    let selected = b
        .js(
            "return document.querySelector('#sched-screen').value",
            vec![],
        )
        .await;
    assert_eq!(selected, json!(screen.to_string()));
    b.fill("#show-event-q", "rriva").await;
    b.until(
        "the movie among the matching titles",
        "const s = document.querySelector('#show-event');
         return s.options.length === 1 && s.value === arguments[0];",
        vec![json!(c.movie.to_string())],
    )
    .await;
    set_value(&b, "#show-day", &day).await;
    set_value(&b, "#show-time", "18:30").await;
    b.fill("#price-regular", "250").await;
    b.fill("#price-premium", "400").await;
    b.click("#show-save").await;
    b.text_contains("#show-created", "Scheduled").await;
    let (show, starts): (uuid::Uuid, String) = sqlx::query_as(
        "select id, to_char(starts_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI') from shows
          where screen_id = $1",
    )
    .bind(screen)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    // 18:30 on the theater's clock is 13:00 UTC.
    assert_eq!(starts, format!("{day}T13:00"));
    b.text_contains(&format!("#calendar li[data-show='{show}']"), "18:30–")
        .await;
    b.js(
        "document.querySelector('#adm-schedule').scrollIntoView()",
        vec![],
    )
    .await;
    b.screenshot("admin-schedule").await;
    assert_accessible(&b, "admin: schedule").await;

    // An overlap (19:00, while the first runs) is refused with the API's words.
    set_value(&b, "#show-time", "19:00").await;
    b.click("#show-save").await;
    b.text_contains("#show-outcome", "the screen is busy then")
        .await;
    let shows: i64 = sqlx::query_scalar("select count(*) from shows where screen_id = $1")
        .bind(screen)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(shows, 1, "the overlapping show was not created");

    // Repeated: 10:00 on that day and the next, two shows at once.
    let next = (time::Date::parse(
        &day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap()
        + time::Duration::days(1))
    .to_string();
    set_value(&b, "#show-time", "10:00").await;
    set_value(&b, "#show-until", &next).await;
    b.click("#show-save").await;
    b.text_contains("#show-created", "Scheduled 2 shows").await;
    let shows: i64 = sqlx::query_scalar("select count(*) from shows where screen_id = $1")
        .bind(screen)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(shows, 3, "the repeated shows were created");

    // The buyer's seat page, through the show's block on the week: the layout
    // drawn, A1 not for sale, the back row's price.
    b.click(&format!("#calendar li[data-show='{show}'] a"))
        .await;
    let a1 = b.seat_label("A1").await;
    assert!(a1.contains("not for sale"), "{a1}");
    let e10 = b.seat_label("E10").await;
    assert!(e10.contains("premium") && e10.contains("400.00"), "{e10}");
    b.close().await;
    sys.shutdown().await;
}
