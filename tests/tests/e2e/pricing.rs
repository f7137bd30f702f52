//! Demand pricing (issue 15; API.md, Round 2 "Theater staff"): a show's price
//! steps up once a share of its places is sold, decided by the sequencer from what
//! was occupied before each request; the booking's `amount` answers it, the
//! payment captures it, the seat map shows the current price, and reconciliation
//! is clean. Bad tiers are `422` and create nothing.

use crate::admin::{admin, at, prices};
use crate::journey::{book, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use tests::{SystemOptions, spawn_system};

/// The price of seat `id` on the show's public map.
fn price_on_map(map: &Value, id: &str) -> i64 {
    map["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["seats"].as_array().unwrap())
        .find(|s| s["id"] == id)
        .and_then(|s| s["price"].as_i64())
        .unwrap_or_else(|| panic!("no price for {id} in {map}"))
}

#[tokio::test]
async fn a_demand_priced_show_steps_up_at_half_sold_and_charges_the_held_price() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    // admin.rs's screen: A1, A2 regular (20000), B1-B3 premium (35000), A3 blocked:
    // five places on sale; +10% from 50% occupied (3 of 5).
    let (screen, movie) = a.venue().await;
    let body = json!({"movie_id": movie, "screen_id": screen, "starts_at": at(48, 0),
        "prices": prices(), "pricing": {"tiers": [{"sold_share": 0.5, "change_permille": 100}]}});
    let (status, show) = a.call(Method::POST, "/v1/admin/shows", Some(body)).await;
    assert_eq!(status, 201, "{show}");
    let show: contracts::ShowId = show["id"].as_str().unwrap().parse().unwrap();

    let (_, token) = sys.customer(1).await;
    let mut bookings = vec![];
    for (n, (seat, amount)) in [("A1", 20000), ("A2", 20000), ("B1", 35000), ("B2", 38500)]
        .into_iter()
        .enumerate()
    {
        if seat == "B2" {
            // 3 of 5 are sold now: the map shows the stepped-up price (it is
            // refreshed just after each commit).
            sys.eventually(
                std::time::Duration::from_secs(10),
                "map priced up",
                || async {
                    let (_, map) = sys.get(&format!("/v1/shows/{show}/seats")).await;
                    price_on_map(&map, "B2") == 38500 && price_on_map(&map, "A1") == 22000
                },
            )
            .await;
        } else if seat == "A1" {
            let (_, map) = sys.get(&format!("/v1/shows/{show}/seats")).await;
            assert_eq!(price_on_map(&map, "B2"), 35000, "{map}");
        }
        let key = format!("priced-{n}");
        let id = book(&sys, &token, &key, show, &[seat], Some("pm_card_ok")).await;
        let b = wait_for(&sys, &token, &id, "confirmed", |b| {
            b["status"] == "confirmed"
        })
        .await;
        assert_eq!(b["amount"], amount, "{seat}: {b}");
        bookings.push((id, amount));
    }

    // The gateway captured exactly the held amount of each booking.
    for (id, amount) in &bookings {
        let (captured, status): (i64, String) = sqlx::query_as(
            "select p.amount, p.status from payments p join bookings b on b.id = p.booking_id
              where b.id = $1 and p.payment_id = b.payment_id",
        )
        .bind(id.parse::<uuid::Uuid>().unwrap())
        .fetch_one(&sys.pool)
        .await
        .unwrap();
        assert_eq!((captured, status.as_str()), (*amount, "succeeded"), "{id}");
    }
    let report = sys.reconcile().await;
    assert!(report.ok, "{:?}", report.problems);
    sys.shutdown().await;
}

#[tokio::test]
async fn bad_tiers_are_refused_and_create_no_show() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let (screen, movie) = a.venue().await;
    for tiers in [
        json!([]),
        json!([{"change_permille": 100}]),
        json!([{"sold_share": 1.5, "change_permille": 100}]),
        json!([{"sold_share": 0.5, "before_start_secs": 60, "change_permille": 100}]),
        json!([{"sold_share": 0.5, "change_permille": -5000}]),
    ] {
        let body = json!({"movie_id": movie, "screen_id": screen, "starts_at": at(48, 0),
            "prices": prices(), "pricing": {"tiers": tiers}});
        let (status, problem) = a.call(Method::POST, "/v1/admin/shows", Some(body)).await;
        assert_eq!(status, 422, "{tiers}: {problem}");
    }
    let n: i64 = sqlx::query_scalar("select count(*) from shows")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    sys.shutdown().await;
}
