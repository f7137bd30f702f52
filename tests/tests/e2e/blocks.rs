//! Blocking a broken seat from a date on (issue 15; API.md, Round 2 "Theater
//! staff"): `POST /v1/admin/screens/{id}/blocks {seat_ids, from}` takes the seats
//! off sale in every show of the screen starting at or after `from`, never in an
//! earlier one, and answers the bookings already holding them; bad input is `422`
//! and blocks nothing. (A scoped admin of another theater is refused: scopes.rs.)

use crate::admin::{admin, at};
use crate::journey::{book, seat_status, wait_for};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tests::{SystemOptions, spawn_system};

#[tokio::test]
async fn a_block_from_a_date_spares_earlier_shows_refuses_later_ones_and_lists_holders() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    // admin.rs's screen: A1, A2, B1-B3 on sale.
    let (screen, movie) = a.venue().await;
    let mut shows = vec![];
    for hours in [24, 72] {
        let (status, show) = a.show(&screen, &movie, &at(hours, 0)).await;
        assert_eq!(status, 201, "{show}");
        shows.push(
            show["id"]
                .as_str()
                .unwrap()
                .parse::<contracts::ShowId>()
                .unwrap(),
        );
    }
    let (early, late) = (shows[0], shows[1]);

    // A buyer holds B1 of the later show before the seat breaks.
    let (_, token) = sys.customer(1).await;
    let holder = book(&sys, &token, "before-block", late, &["B1"], None).await;
    wait_for(&sys, &token, &holder, "held", |b| b["status"] == "held").await;

    let path = format!("/v1/admin/screens/{screen}/blocks");
    let body = json!({"seat_ids": ["B2", "B1"], "from": at(48, 0)});
    let (status, res) = a.call(Method::POST, &path, Some(body)).await;
    assert_eq!(status, 201, "{res}");
    assert_eq!(res["settled"], true, "{res}");
    assert_eq!(res["block"]["seat_ids"], json!(["B1", "B2"]), "{res}");
    assert_eq!(res["shows"], json!([late.to_string()]), "{res}");
    assert_eq!(
        res["bookings"],
        json!([{"booking_id": holder, "show_id": late.to_string(), "status": "held", "seats": ["B1"]}]),
        "{res}"
    );

    // The later show refuses the seat; the earlier one still sells it.
    let refused = book(&sys, &token, "late-b2", late, &["B2"], None).await;
    let b = wait_for(&sys, &token, &refused, "decided", |b| {
        b["status"] != "queued"
    })
    .await;
    assert_eq!(b["status"], "rejected", "{b}");
    assert_eq!(b["reason"], "seat_unavailable", "{b}");
    let sold = book(&sys, &token, "early-b2", early, &["B2"], None).await;
    let b = wait_for(&sys, &token, &sold, "decided", |b| b["status"] != "queued").await;
    assert_eq!(b["status"], "held", "{b}");

    // The later show's map shows B2 blocked (B1 stays held by its booking); the
    // earlier show's B3 is still available.
    sys.eventually(Duration::from_secs(15), "B2 blocked on the map", || async {
        seat_status(&sys, late, "B2").await == "blocked"
    })
    .await;
    assert_eq!(seat_status(&sys, late, "B1").await, "held");
    assert_eq!(seat_status(&sys, early, "B3").await, "available");

    let (status, list) = a.call(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], res["block"]["id"], "{list}");
    sys.shutdown().await;
}

#[tokio::test]
async fn a_bad_block_is_refused_and_blocks_nothing() {
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let a = admin(&sys).await;
    let (screen, _) = a.venue().await;
    let path = format!("/v1/admin/screens/{screen}/blocks");
    for body in [
        json!({"seat_ids": ["Z9"], "from": at(1, 0)}),
        json!({"seat_ids": [], "from": at(1, 0)}),
        json!({"seat_ids": ["A1"], "from": "tomorrow"}),
        json!({"seat_ids": ["A1"]}),
    ] {
        let (status, problem) = a.call(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {problem}");
    }
    let (status, _) = a
        .call(
            Method::POST,
            &format!("/v1/admin/screens/{}/blocks", uuid::Uuid::now_v7()),
            Some(json!({"seat_ids": ["A1"], "from": at(1, 0)})),
        )
        .await;
    assert_eq!(status, 404);
    let n: i64 = sqlx::query_scalar("select count(*) from seat_blocks")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    sys.shutdown().await;
}
