//! The HTTP contract of `POST /v1/bookings` and `GET /v1/bookings/{id}`: success,
//! and every 4xx as problem+json that changes nothing.

use auth::Role;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tests::{SystemOptions, spawn_system};

#[tokio::test]
async fn a_booking_is_accepted_then_held_and_readable_by_its_owner_only() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(5, 10).await;
    let (user, token) = sys.customer(1).await;
    let res = sys
        .http
        .post(sys.url("/v1/bookings"))
        .bearer_auth(&token)
        .header("idempotency-key", "order-1")
        .header("x-request-id", "req-abc-123")
        .json(&json!({"show_id": show.to_string(), "seats": ["C5", "C6"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["x-request-id"], "req-abc-123");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    let id = body["booking_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/bookings/{id}"));
    assert_eq!(body["status_url"], location);

    sys.wait_decided(&[id.parse().unwrap()], Duration::from_secs(20))
        .await;
    let (status, b) = sys.booking(&token, &id).await;
    assert_eq!(status, 200);
    assert_eq!(b["status"], "held");
    assert_eq!(b["seats"], json!(["C5", "C6"]));
    assert_eq!(b["amount"], 50_000);
    assert_eq!(b["currency"], "INR");
    assert_eq!(b["user_id"], user.to_string());
    assert!(b["hold_expires_at"].as_str().unwrap().ends_with('Z'));

    let (_, other) = sys.customer(2).await;
    let (status, p) = sys.booking(&other, &id).await;
    assert_eq!(status, 404, "someone else's booking is not found: {p}");
    sys.shutdown().await;
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_booking_and_books_once() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(3, 6).await;
    let (_, token) = sys.customer(1).await;
    let body = json!({"show_id": show.to_string(), "quantity": 2});
    let (s1, a) = sys.submit(&token, "same-key", body.clone()).await;
    let (s2, b) = sys.submit(&token, "same-key", body).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a["booking_id"], b["booking_id"]);
    let id: uuid::Uuid = a["booking_id"].as_str().unwrap().parse().unwrap();
    sys.wait_decided(&[id], Duration::from_secs(20)).await;
    // A duplicate is never (wrongly) applied.
    sys.holds_for(
        Duration::from_millis(300),
        "one event for the booking",
        || async {
            let events: i64 =
                sqlx::query_scalar("select count(*) from booking_events where booking_id = $1")
                    .bind(id)
                    .fetch_one(&sys.pool)
                    .await
                    .unwrap();
            events == 1
        },
    )
    .await;
    let live: i64 = sqlx::query_scalar(
        "select count(*) from booking_seats where booking_id = $1 and released_at is null",
    )
    .bind(id)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(live, 2);

    // The same key for a different request is refused.
    let (status, p) = sys
        .submit(
            &token,
            "same-key",
            json!({"show_id": show.to_string(), "quantity": 3}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["code"], "idempotency_key_reused");
    sys.shutdown().await;
}

/// Booking bodies that break the contract, with the status and problem code each
/// gets: every one is about `show` (a 2x4 show) but the last, an unknown show.
fn bad_bodies(show: &str) -> Vec<(serde_json::Value, u16, &'static str)> {
    let s = show;
    let unknown = uuid::Uuid::now_v7().to_string();
    vec![
        (
            json!({"show_id": s, "seats": ["Z9"]}),
            422,
            "validation_failed",
        ),
        (
            json!({"show_id": s, "seats": ["a1"]}),
            422,
            "validation_failed",
        ),
        (
            json!({"show_id": s, "seats": ["A1", "A1"]}),
            422,
            "validation_failed",
        ),
        (json!({"show_id": s, "seats": []}), 422, "validation_failed"),
        (
            json!({"show_id": s, "quantity": 0}),
            422,
            "validation_failed",
        ),
        (
            json!({"show_id": s, "quantity": 11}),
            422,
            "validation_failed",
        ),
        (
            json!({"show_id": s, "quantity": 2, "seat_type": "balcony"}),
            422,
            "validation_failed",
        ),
        (
            json!({"show_id": s, "quantity": 1, "seats": ["A1"]}),
            422,
            "validation_failed",
        ),
        (json!({"show_id": s}), 422, "validation_failed"),
        (
            json!({"show_id": s, "seat": ["A1"]}),
            422,
            "validation_failed",
        ),
        (
            json!({"show_id": s, "quantity": "two"}),
            422,
            "validation_failed",
        ),
        (
            json!({"show_id": "not-a-uuid", "quantity": 1}),
            422,
            "validation_failed",
        ),
        (
            json!({"show_id": s, "quantity": 1, "payment_method": "bad method!"}),
            422,
            "validation_failed",
        ),
        (json!({"show_id": unknown, "quantity": 1}), 404, "not_found"),
    ]
}

#[tokio::test]
async fn bad_requests_get_problem_json_and_change_nothing() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(2, 4).await;
    let (_, token) = sys.customer(1).await;
    let s = show.to_string();
    for (i, (body, want, code)) in bad_bodies(&s).into_iter().enumerate() {
        let res = sys
            .http
            .post(sys.url("/v1/bookings"))
            .bearer_auth(&token)
            .header("idempotency-key", format!("k{i}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), want, "case {i}: {body}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "case {i}"
        );
        let p: serde_json::Value = res.json().await.unwrap();
        assert_eq!(p["code"], code, "case {i}: {p}");
        assert_eq!(p["status"], want, "case {i}");
        assert!(
            p["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "case {i}"
        );
        assert!(p["title"].is_string() && p["type"].is_string(), "case {i}");
    }

    // Not JSON at all, the wrong content type, a body over the limit.
    let res = sys
        .http
        .post(sys.url("/v1/bookings"))
        .bearer_auth(&token)
        .header("idempotency-key", "raw")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = sys
        .http
        .post(sys.url("/v1/bookings"))
        .bearer_auth(&token)
        .header("idempotency-key", "text")
        .body("show_id=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = sys
        .http
        .post(sys.url("/v1/bookings"))
        .bearer_auth(&token)
        .header("idempotency-key", "big")
        .header("content-type", "application/json")
        .body(format!(
            "{{\"show_id\":\"{s}\",\"pad\":\"{}\"}}",
            "x".repeat(100_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(
        res.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "an unread body ends the connection, and the answer says so"
    );

    // No Idempotency-Key; no token; a forged token.
    let (status, p) = {
        let res = sys
            .http
            .post(sys.url("/v1/bookings"))
            .bearer_auth(&token)
            .json(&json!({"show_id": s, "quantity": 1}))
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 400, "{p}");
    let res = sys
        .http
        .post(sys.url("/v1/bookings"))
        .header("idempotency-key", "anon")
        .json(&json!({"show_id": s, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (status, _) = sys
        .submit(
            &format!("{token}x"),
            "forged",
            json!({"show_id": s, "quantity": 1}),
        )
        .await;
    assert_eq!(status, 401);

    // Unknown booking ids and malformed ones are 404, unknown routes too.
    let (status, _) = sys.booking(&token, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(status, 404);
    let (status, _) = sys.booking(&token, "nope").await;
    assert_eq!(status, 404);
    let res = sys
        .http
        .get(sys.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = sys
        .http
        .delete(sys.url("/v1/bookings"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);

    // Nothing reached the database: a good booking of the same show, sent after
    // them all, is decided, and it is the only booking (its partition is in order).
    let (status, accepted) = sys
        .submit(&token, "good", json!({"show_id": s, "quantity": 1}))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id: uuid::Uuid = accepted["booking_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a booking id");
    sys.wait_decided(&[id], Duration::from_secs(30)).await;
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("select id from bookings")
        .fetch_all(&sys.pool)
        .await
        .unwrap();
    assert_eq!(ids, vec![id]);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_show_that_is_not_on_sale_is_a_conflict() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(2, 4).await;
    sqlx::query("update shows set status = 'cancelled' where id = $1")
        .bind(show.0)
        .execute(&sys.pool)
        .await
        .unwrap();
    let (_, token) = sys.customer(1).await;
    // The show cache lives one second in tests.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, p) = sys
        .submit(
            &token,
            "k",
            json!({"show_id": show.to_string(), "quantity": 1}),
        )
        .await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["code"], "show_not_on_sale");
    sys.shutdown().await;
}

#[tokio::test]
async fn health_and_readiness_answer_and_metrics_are_served_only_on_their_own_listener() {
    let sys = spawn_system(SystemOptions::default()).await;
    let res = sys.http.get(sys.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = sys.http.get(sys.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["checks"],
        json!({"postgres": true, "rabbitmq": true, "redis": true})
    );
    // Metrics are served on their own listener, never on the API's port.
    let text = sys.ingress_metrics().await;
    assert!(text.contains("http_request_duration_seconds"), "{text}");
    let res = sys
        .http
        .get(format!("http://{}/healthz", sys.ingress_metrics_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = sys.http.get(sys.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    sys.shutdown().await;
}

/// A NUL in a query parameter (the fuzzer sent `?q=%00` to the admin's movie list and
/// got a 500: PostgreSQL refuses NUL in text) is a 422 problem on every route, and a
/// literal "%00" (`%2500`) is ordinary text.
#[tokio::test]
async fn a_nul_in_a_query_parameter_is_a_422_problem_anywhere() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, token) = sys.user_with_role(Role::Admin).await;
    for path in [
        "/v1/admin/movies?q=%00&limit=26",
        "/v1/movies?city=Mumbai%00",
        "/v1/events?q=a%00b",
    ] {
        let (status, body) = sys.call(Method::GET, path, Some(&token), None).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["code"], "validation_failed", "{path}: {body}");
    }
    let (status, body) = sys
        .call(Method::GET, "/v1/admin/movies?q=%2500", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{body}");
    sys.shutdown().await;
}
