//! The buyer's journey (API.md, Round 2 "Bookings"): a declined card keeps the
//! seats while the hold lasts and another card pays; a hold that runs out after a
//! decline fails and frees the seats; two attempts that both capture keep one and
//! refund the other; the buyer releases a hold. On the real services and the local
//! gateway.

use serde_json::{Value, json};
use std::time::Duration;
use tests::Faults;
use tests::{SystemOptions, TestSystem, spawn_system};

const WAIT: Duration = Duration::from_secs(30);

/// Submits a booking of `seats` (paying with `method` if given); its id.
pub async fn book(
    sys: &TestSystem,
    token: &str,
    key: &str,
    show: contracts::ShowId,
    seats: &[&str],
    method: Option<&str>,
) -> String {
    let mut body = json!({"show_id": show.to_string(), "seats": seats});
    if let Some(m) = method {
        body["payment_method"] = json!(m);
    }
    let (status, accepted) = sys.submit(token, key, body).await;
    assert_eq!(status, 202, "{accepted}");
    accepted["booking_id"].as_str().unwrap().to_owned()
}

/// Polls the booking until `done` holds; returns it.
pub async fn wait_for(
    sys: &TestSystem,
    token: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    sys.booking_until(token, id, &format!("got {what}"), done)
        .await
}

/// The events of a booking whose first card was declined and whose second paid.
const DECLINED_THEN_PAID: [&str; 5] = [
    "booking.held",
    "booking.payment_pending",
    "booking.payment_declined",
    "booking.payment_pending",
    "booking.confirmed",
];

/// Held again after a declined payment.
pub fn declined(b: &Value) -> bool {
    b["status"] == "held" && b["payment"]["status"] == "failed"
}

pub async fn events_of(sys: &TestSystem, id: &str) -> Vec<String> {
    sqlx::query_scalar("select type from booking_events where booking_id = $1 order by seq")
        .bind(id.parse::<uuid::Uuid>().unwrap())
        .fetch_all(&sys.pool)
        .await
        .unwrap()
}

/// The status of `seat` on the show's public seat map.
pub async fn seat_status(sys: &TestSystem, show: contracts::ShowId, seat: &str) -> String {
    let (status, map) = sys.get(&format!("/v1/shows/{show}/seats")).await;
    assert_eq!(status, 200, "{map}");
    map["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["seats"].as_array().unwrap().iter())
        .find(|s| s["id"] == seat)
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no seat {seat} in {map}"))
}

async fn pay(sys: &TestSystem, token: &str, id: &str, method: &str) -> (u16, Value) {
    sys.post(
        token,
        &format!("/v1/bookings/{id}/payment"),
        Some(json!({"payment_method": method})),
    )
    .await
}

async fn assert_reconciled(sys: &TestSystem) {
    let report = sys.reconcile().await;
    assert!(report.ok, "{:#?}", report.problems);
}

/// The saga settles a declined attempt before the sequencer records it, so a buyer
/// can read "payment failed" while the booking's row still says `payment_pending`
/// (between the attempt's start and its failure in the partition; CI once met it).
/// Paying again then starts the next attempt; an attempt still open, or one that
/// succeeded, still refuses it.
#[tokio::test]
async fn paying_again_after_a_decline_is_taken_before_the_booking_reads_held_again() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 4).await;
    let (_, token) = sys.customer(1).await;
    let id = book(&sys, &token, "k", show, &["A1"], Some("pm_card_declined")).await;
    wait_for(&sys, &token, &id, "a decline", declined).await;
    let uuid = id.parse::<uuid::Uuid>().unwrap();
    let set = |booking: &'static str, attempt: &'static str| {
        let pool = sys.pool.clone();
        async move {
            sqlx::query("update bookings set status = $2 where id = $1")
                .bind(uuid)
                .bind(booking)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(
                "update payments set status = $2
                  where booking_id = $1 and attempt = (select max(attempt) from payments where booking_id = $1)",
            )
            .bind(uuid)
            .bind(attempt)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    // The row as the sequencer leaves it between the attempt's start and failure.
    set("payment_pending", "failed").await;
    let (status, body) = pay(&sys, &token, &id, "pm_card_ok").await;
    assert_eq!(status, 202, "{body}");
    let b = wait_for(&sys, &token, &id, "confirmed", |b| {
        b["status"] == "confirmed"
    })
    .await;
    assert_eq!(b["payment"]["attempts"], 2, "{b}");
    assert_eq!(events_of(&sys, &id).await, DECLINED_THEN_PAID);
    // An attempt still open, or one that succeeded: a payment is in flight.
    for open in ["pending", "succeeded"] {
        set("payment_pending", open).await;
        let (status, body) = pay(&sys, &token, &id, "pm_card_ok").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("payment_in_progress")),
            "{open}: {body}"
        );
    }
    set("confirmed", "succeeded").await;
    assert_reconciled(&sys).await;
    sys.shutdown().await;
}

#[tokio::test]
async fn a_declined_card_keeps_the_seats_and_a_second_card_confirms_the_booking() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 4).await;
    let (_, token) = sys.customer(1).await;
    let id = book(
        &sys,
        &token,
        "k",
        show,
        &["A1", "A2"],
        Some("pm_card_declined"),
    )
    .await;
    let b = wait_for(&sys, &token, &id, "a decline", declined).await;
    assert_eq!(b["payment"]["decline_reason"], "card_declined", "{b}");
    assert_eq!(b["payment"]["attempts"], 1, "{b}");
    assert!(b["hold_expires_at"].is_string(), "{b}");
    // The seats stay the buyer's: held on the map, refused to someone else.
    assert_eq!(seat_status(&sys, show, "A1").await, "held");
    let (_, other) = sys.customer(2).await;
    let rival = book(&sys, &other, "rival", show, &["A2"], None).await;
    let r = wait_for(&sys, &other, &rival, "a decision", |b| {
        b["status"] != "queued"
    })
    .await;
    assert_eq!(r["status"], "rejected", "{r}");

    // Another card pays.
    let (status, body) = pay(&sys, &token, &id, "pm_card_ok").await;
    assert_eq!(status, 202, "{body}");
    let b = wait_for(&sys, &token, &id, "confirmed", |b| {
        b["status"] == "confirmed"
    })
    .await;
    assert_eq!(b["payment"]["status"], "succeeded", "{b}");
    assert_eq!(b["payment"]["method"], "pm_card_ok", "{b}");
    assert_eq!(b["payment"]["attempts"], 2, "{b}");
    assert_eq!(seat_status(&sys, show, "A1").await, "sold");
    assert_eq!(events_of(&sys, &id).await, DECLINED_THEN_PAID);
    // Two attempts, two gateway payments (one idempotency key each).
    let ids: Vec<Option<String>> = sqlx::query_scalar(
        "select payment_id from payments where booking_id = $1 order by attempt",
    )
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    // A paid booking cannot be paid again.
    assert_eq!(pay(&sys, &token, &id, "pm_card_ok").await.0, 409);
    assert_reconciled(&sys).await;
    sys.shutdown().await;
}

#[tokio::test]
async fn a_decline_then_the_hold_running_out_fails_the_booking_and_frees_its_seats() {
    let sys = spawn_system(SystemOptions {
        hold_ttl_secs: 2,
        expiry_sweep_ms: 100,
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let id = book(&sys, &token, "k", show, &["A2"], Some("pm_card_declined")).await;
    wait_for(&sys, &token, &id, "a decline", declined).await;
    // A hold that runs out with no attempt stays `expired`.
    let unpaid = book(&sys, &token, "unpaid", show, &["A3"], None).await;

    let b = wait_for(&sys, &token, &id, "failed", |b| b["status"] == "failed").await;
    assert_eq!(b["reason"], "payment_failed", "{b}");
    assert_eq!(b["reason_detail"]["detail"], "card_declined", "{b}");
    assert_eq!(b["payment"]["decline_reason"], "card_declined", "{b}");
    let u = wait_for(&sys, &token, &unpaid, "expired", |b| b["status"] != "held").await;
    assert_eq!(u["status"], "expired", "{u}");
    // The seat is free again, and paying is refused.
    assert_eq!(seat_status(&sys, show, "A2").await, "available");
    let again = book(&sys, &token, "again", show, &["A2"], None).await;
    let a = wait_for(&sys, &token, &again, "a decision", |b| {
        b["status"] != "queued"
    })
    .await;
    assert_eq!(a["status"], "held", "{a}");
    assert_eq!(pay(&sys, &token, &id, "pm_card_ok").await.0, 409);
    assert_reconciled(&sys).await;
    sys.shutdown().await;
}

#[tokio::test]
async fn two_payment_attempts_that_both_capture_keep_one_and_refund_the_other() {
    let base = SystemOptions::default();
    let mut sys = spawn_system(SystemOptions {
        gateway: local_gateway::LocalGatewayConfig {
            // The first attempt settles well after the second one.
            slow_delay_ms: 2500,
            ..base.gateway.clone()
        },
        ..base
    })
    .await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let id = book(&sys, &token, "k", show, &["A1"], None).await;
    wait_for(&sys, &token, &id, "held", |b| b["status"] == "held").await;

    // Both pay requests pass ingress while the booking is held (the workers are
    // stopped, so neither attempt has started yet): a double click with two cards.
    let w = sys.workers.pop().unwrap();
    w.stop().await;
    assert_eq!(pay(&sys, &token, &id, "pm_card_slow").await.0, 202);
    assert_eq!(pay(&sys, &token, &id, "pm_card_ok").await.0, 202);
    let w = sys.start_worker(None, Faults::default()).await;
    sys.workers.push(w);

    let b = wait_for(&sys, &token, &id, "confirmed", |b| {
        b["status"] == "confirmed"
    })
    .await;
    assert_eq!(b["payment"]["method"], "pm_card_ok", "{b}");
    let booking: uuid::Uuid = id.parse().unwrap();
    // The slow attempt captures later: refunded, the booking stays confirmed.
    sys.eventually(WAIT, "the second capture is refunded", || async {
        let r: Option<(String, Option<String>)> = sqlx::query_as(
            "select status, refund_status from payments
              where booking_id = $1 and method = 'pm_card_slow'",
        )
        .bind(booking)
        .fetch_optional(&sys.pool)
        .await
        .unwrap();
        r == Some(("succeeded".into(), Some("succeeded".into())))
    })
    .await;
    let (_, b) = sys.booking(&token, &id).await;
    assert_eq!(b["status"], "confirmed", "{b}");
    assert_eq!(b["payment"]["method"], "pm_card_ok", "{b}");
    assert_eq!(b["payment"]["attempts"], 2, "{b}");
    let refused: Vec<String> = sqlx::query_scalar(
        "select payload->'event'->>'reason' from booking_events
          where booking_id = $1 and type = 'booking.late_payment_refused'",
    )
    .bind(booking)
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    assert_eq!(refused, ["duplicate_payment"]);
    assert_eq!(
        events_of(&sys, &id)
            .await
            .iter()
            .filter(|e| *e == "booking.confirmed")
            .count(),
        1
    );
    assert_reconciled(&sys).await;
    let (status, report) = sys
        .call(
            reqwest::Method::GET,
            "/v1/ops/reconcile",
            Some(&sys.user_with_role(auth::Role::Operator).await.1),
            None,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    sys.shutdown().await;
}

#[tokio::test]
async fn releasing_a_hold_frees_its_seats_at_once_and_ends_it_released() {
    let base = SystemOptions::default();
    let sys = spawn_system(SystemOptions {
        gateway: local_gateway::LocalGatewayConfig {
            slow_delay_ms: 3000,
            ..base.gateway.clone()
        },
        ..base
    })
    .await;
    let show = sys.show(1, 5).await;
    let (_, token) = sys.customer(1).await;
    let (_, stranger) = sys.customer(2).await;
    let id = book(&sys, &token, "k", show, &["A1", "A2"], None).await;
    wait_for(&sys, &token, &id, "held", |b| b["status"] == "held").await;
    let release = |t: String, id: String| {
        let sys = &sys;
        async move {
            sys.post(&t, &format!("/v1/bookings/{id}/release"), None)
                .await
        }
    };
    // Someone else's booking is not found, as on every booking route.
    let (status, body) = release(stranger.clone(), id.clone()).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = release(token.clone(), id.clone()).await;
    assert_eq!(status, 202, "{body}");
    let b = wait_for(&sys, &token, &id, "released", |b| b["status"] == "released").await;
    assert_eq!(b["reason"], "released", "{b}");
    assert_eq!(seat_status(&sys, show, "A1").await, "available");
    assert_eq!(seat_status(&sys, show, "A2").await, "available");
    let taken = book(&sys, &stranger, "mine-now", show, &["A1"], None).await;
    let t = wait_for(&sys, &stranger, &taken, "a decision", |b| {
        b["status"] != "queued"
    })
    .await;
    assert_eq!(t["status"], "held", "{t}");
    // A released booking is final: no second release, no payment.
    let (status, body) = release(token.clone(), id.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_releasable")),
        "{body}"
    );
    assert_eq!(pay(&sys, &token, &id, "pm_card_ok").await.0, 409);

    // A payment in flight is the gateway's to decide, not releasable.
    let paying = book(&sys, &token, "slow", show, &["A4"], Some("pm_card_slow")).await;
    wait_for(&sys, &token, &paying, "payment_pending", |b| {
        b["status"] == "payment_pending"
    })
    .await;
    let (status, body) = release(token.clone(), paying.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("payment_in_progress")),
        "{body}"
    );
    let (status, body) = pay(&sys, &token, &paying, "pm_card_ok").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("payment_in_progress")),
        "{body}"
    );
    let p = wait_for(&sys, &token, &paying, "confirmed", |b| {
        b["status"] == "confirmed"
    })
    .await;
    let (status, body) = release(token.clone(), paying.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_releasable")),
        "{p} {body}"
    );
    assert_reconciled(&sys).await;
    sys.shutdown().await;
}
