//! Recurring schedules (API.md, Round 2, "Theater staff"): `POST
//! /v1/admin/shows/recurring` creates a show at each time on the theater's clock on
//! each day of a range (optionally some weekdays), all or none; overlaps are a 409
//! naming every one, and nothing is created.

use crate::admin::{Admin, admin, prices};
use reqwest::Method;
use serde_json::{Value, json};
use tests::{SystemOptions, spawn_system};

/// `n` days ahead on the theater's calendar (Asia/Kolkata, +05:30).
fn day(n: i64) -> time::Date {
    (time::OffsetDateTime::now_utc() + time::Duration::minutes(330) + time::Duration::days(n))
        .date()
}

async fn recurring(a: &Admin<'_>, screen: &str, movie: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"movie_id": movie, "screen_id": screen, "prices": prices()});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    a.call(Method::POST, "/v1/admin/shows/recurring", Some(body))
        .await
}

async fn shows_on(a: &Admin<'_>, screen: &str) -> usize {
    let count: i64 = sqlx::query_scalar("select count(*) from shows where screen_id = $1::uuid")
        .bind(screen)
        .fetch_one(&a.sys.pool)
        .await
        .unwrap();
    usize::try_from(count).unwrap()
}

#[tokio::test]
async fn shows_are_created_at_each_time_of_each_day_on_the_theaters_clock() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let (screen, movie) = a.venue().await;
    let (d, last) = (day(3), day(5));
    let (status, res) = recurring(
        &a,
        &screen,
        &movie,
        json!({"times": ["18:30", "10:00"], "from": d.to_string(), "to": last.to_string()}),
    )
    .await;
    assert_eq!(status, 201, "{res}");
    assert_eq!(res["created"], 6, "{res}");
    let local: Vec<&str> = res["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["starts_at_local"].as_str().unwrap())
        .collect();
    assert_eq!(local[0], format!("{d}T10:00:00+05:30"));
    assert_eq!(local[1], format!("{d}T18:30:00+05:30"));
    assert_eq!(local[5], format!("{last}T18:30:00+05:30"));
    // 18:30 in Kolkata is 13:00 UTC.
    assert_eq!(res["items"][1]["starts_at"], format!("{d}T13:00:00Z"));
    assert_eq!(shows_on(&a, &screen).await, 6);
    // Each is a show like any other: on sale, with the prices given.
    let id = res["items"][0]["id"].as_str().unwrap();
    let (status, show) = sys.get(&format!("/v1/shows/{id}")).await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["on_sale"], true);
    assert_eq!(show["prices"].as_array().unwrap().len(), 2);

    // Only the weekday of one day in a week of days: one more show.
    let name = d.weekday().to_string()[..3].to_lowercase();
    let (status, res) = recurring(
        &a,
        &screen,
        &movie,
        json!({"times": ["22:00"], "from": d.to_string(), "to": day(9).to_string(), "weekdays": [name]}),
    )
    .await;
    assert_eq!(status, 201, "{res}");
    assert_eq!(res["created"], 1, "{res}");
    sys.shutdown().await;
}

#[tokio::test]
async fn an_overlap_refuses_the_whole_schedule_and_names_every_clash() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let (screen, movie) = a.venue().await;
    let d = day(3);
    // A live show at 14:30 on the second day.
    let existing = a
        .create(
            "/v1/admin/shows",
            json!({"movie_id": movie, "screen_id": screen, "starts_at": format!("{}T09:00:00Z", day(4)), "prices": prices()}),
        )
        .await;
    let before = shows_on(&a, &screen).await;
    let (status, problem) = recurring(
        &a,
        &screen,
        &movie,
        json!({"times": ["14:00", "10:00"], "from": d.to_string(), "to": day(4).to_string()}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "schedule_overlaps");
    let overlaps = problem["overlaps"].as_array().unwrap();
    assert_eq!(overlaps.len(), 1, "{problem}");
    assert_eq!(
        overlaps[0]["starts_at_local"],
        format!("{}T14:00:00+05:30", day(4))
    );
    assert_eq!(overlaps[0]["other_show_id"], existing["id"]);
    assert_eq!(shows_on(&a, &screen).await, before, "nothing created");

    // Two times of the request that meet (a 120-minute movie at 10:00 and 11:00):
    // both days named, with no other show id.
    let (status, problem) = recurring(
        &a,
        &screen,
        &movie,
        json!({"times": ["10:00", "11:00"], "from": day(6).to_string(), "to": day(7).to_string()}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let overlaps = problem["overlaps"].as_array().unwrap();
    assert_eq!(overlaps.len(), 2, "{problem}");
    assert!(
        overlaps.iter().all(|o| o["other_show_id"].is_null()),
        "{problem}"
    );
    assert_eq!(shows_on(&a, &screen).await, before, "nothing created");
    sys.shutdown().await;
}

#[tokio::test]
async fn days_times_and_weekdays_that_cannot_be_are_refused() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let (screen, movie) = a.venue().await;
    let d = day(3).to_string();
    for (extra, says) in [
        (json!({"times": ["25:00"], "from": d, "to": d}), "HH:MM"),
        (json!({"times": [], "from": d, "to": d}), "times holds"),
        (
            json!({"times": ["10:00"], "from": d, "to": day(1).to_string()}),
            "to is before from",
        ),
        (
            json!({"times": ["10:00"], "from": "next week", "to": d}),
            "from must be a day",
        ),
        (
            json!({"times": ["10:00"], "from": d, "to": d, "weekdays": ["someday"]}),
            "weekdays",
        ),
        (
            json!({"times": ["10:00"], "from": day(-2).to_string(), "to": d}),
            "in the future",
        ),
        (
            json!({"times": ["10:00", "18:00"], "from": d, "to": day(400).to_string()}),
            "at most 400 shows",
        ),
    ] {
        let (status, problem) = recurring(&a, &screen, &movie, extra.clone()).await;
        assert_eq!(status, 422, "{extra}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{extra}: {problem}"
        );
    }
    assert_eq!(shows_on(&a, &screen).await, 0);
    sys.shutdown().await;
}
