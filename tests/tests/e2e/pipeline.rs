//! The pipeline under load: contention decided by queue order, never oversold.

use futures::StreamExt;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use tests::{SystemOptions, spawn_system};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_concurrent_requests_for_a_hundred_seats_hold_exactly_a_hundred() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(10, 10).await;
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(sys.customer(i).await.1);
    }
    let seat_ids: Vec<String> = (0..10)
        .flat_map(|r| (1..=10).map(move |n| format!("{}{n}", (b'A' + r) as char)))
        .collect();
    let requests: Vec<(String, String, serde_json::Value)> = (0..2000)
        .map(|i| {
            let token = users[i % users.len()].clone();
            // A fixed mix: chosen single seats, chosen pairs, best-available 1..=3.
            let body = match i % 4 {
                0 | 1 => json!({"show_id": show.to_string(), "seats": [seat_ids[(i * 37) % 100]]}),
                2 => json!({"show_id": show.to_string(),
                             "seats": [seat_ids[(i * 13) % 100], seat_ids[(i * 13 + 1) % 100]]}),
                _ => json!({"show_id": show.to_string(), "quantity": 1 + (i % 3)}),
            };
            (token, format!("race-{i}"), body)
        })
        .collect();
    let results: Vec<(u16, serde_json::Value)> = futures::stream::iter(requests)
        .map(|(token, key, body)| {
            let sys = &sys;
            async move { sys.submit(&token, &key, body).await }
        })
        .buffer_unordered(2000)
        .collect()
        .await;
    let mut ids = HashSet::new();
    for (status, body) in &results {
        assert_eq!(*status, 202, "{body}");
        ids.insert(
            body["booking_id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        );
    }
    assert_eq!(ids.len(), 2000, "every request is its own booking");
    let ids: Vec<uuid::Uuid> = ids.into_iter().collect();
    sys.wait_decided(&ids, Duration::from_secs(120)).await;

    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "select status, count(*) from bookings where id = any($1) group by status order by status",
    )
    .bind(&ids)
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    for (status, _) in &statuses {
        assert!(status == "held" || status == "rejected", "{statuses:?}");
    }
    // Exactly 100 seats held, none twice, and the database agrees.
    let held_seats: Vec<(String, i64)> = sqlx::query_as(
        "select seat_id, count(*) from booking_seats
          where show_id = $1 and released_at is null group by seat_id",
    )
    .bind(show.0)
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    assert_eq!(held_seats.len(), 100, "every seat ends held");
    assert!(held_seats.iter().all(|(_, n)| *n == 1), "a seat held twice");
    let seats_of_held: i64 = sqlx::query_scalar(
        "select coalesce(sum(cardinality(seats)), 0) from bookings where show_id = $1 and status = 'held'",
    )
    .bind(show.0)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(seats_of_held, 100);
    // One decision event per booking.
    let dup: i64 = sqlx::query_scalar(
        "select count(*) from (select booking_id from booking_events group by booking_id having count(*) > 1) x",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(dup, 0);
    sys.shutdown().await;
}

#[tokio::test]
async fn an_expired_hold_frees_its_seats_for_the_next_customer() {
    let sys = spawn_system(SystemOptions {
        hold_ttl_secs: 1,
        expiry_sweep_ms: 200,
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(1, 4).await;
    let (_, a) = sys.customer(1).await;
    let (_, b) = sys.customer(2).await;
    let (_, first) = sys
        .submit(
            &a,
            "a1",
            json!({"show_id": show.to_string(), "seats": ["A2", "A3"]}),
        )
        .await;
    let first_id = first["booking_id"].as_str().unwrap().to_owned();
    sys.eventually(Duration::from_secs(30), "the hold expires", || async {
        sys.booking(&a, &first_id).await.1["status"] == "expired"
    })
    .await;
    let (_, body) = sys.booking(&a, &first_id).await;
    assert_eq!(body["reason"], "hold_expired");
    let (_, second) = sys
        .submit(
            &b,
            "b1",
            json!({"show_id": show.to_string(), "seats": ["A2", "A3"]}),
        )
        .await;
    let second_id = second["booking_id"].as_str().unwrap().to_owned();
    sys.eventually(
        Duration::from_secs(20),
        "the freed seats are held again",
        || async {
            let s = sys.booking(&b, &second_id).await.1["status"].clone();
            s == "held" || s == "expired"
        },
    )
    .await;
    let kinds: Vec<String> =
        sqlx::query_scalar("select type from booking_events where booking_id = $1 order by seq")
            .bind(first_id.parse::<uuid::Uuid>().unwrap())
            .fetch_all(&sys.pool)
            .await
            .unwrap();
    assert_eq!(kinds, ["booking.held", "booking.expired"]);
    sys.shutdown().await;
}
