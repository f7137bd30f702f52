//! A refund the gateway refused for good, from the payments dead-letter queue: the
//! dry run says what the replay will do, the replay retries the refund through the
//! saga, an operator can record a refund made by hand instead, and a message
//! dead-lettered again keeps every reason it died for.

use crate::ops::{bookctl, bookctl_json, queue_depth, token, wait_depth};
use crate::payments::{book_and_wait, wait_status};
use auth::Role;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

/// Books one seat with `method`, pays, cancels, and waits until the refund failed
/// and is parked in the payments dead-letter queue; returns the booking id.
async fn cancel_with_failed_refund(sys: &TestSystem, token: &str, method: &str) -> String {
    let show = sys.show(1, 2).await;
    let b = book_and_wait(sys, token, "k", show, &["A1"], Some(method), &["confirmed"]).await;
    let id = b["booking_id"].as_str().unwrap().to_owned();
    let (status, _) = sys
        .post(token, &format!("/v1/bookings/{id}/cancel"), None)
        .await;
    assert_eq!(status, 202);
    let dlq = sys.settings.topology().payments_dlq();
    wait_depth(sys, &dlq, 1).await;
    let b = sys
        .booking_until(token, &id, "has its refund failed", |b| {
            b["payment"]["refund_status"] == "failed"
        })
        .await;
    assert_eq!(b["status"], "cancelled", "{b}");
    id
}

/// The payments dead-letter queue, as `dlq list` prints it.
fn payments_dlq(sys: &TestSystem) -> String {
    sys.settings.topology().payments_dlq()
}

/// `POST /v1/ops/bookings/{id}/refund-record` with `body`, as the bearer of `token`.
async fn record_by_hand(sys: &TestSystem, token: String, id: String, body: Value) -> (u16, Value) {
    sys.call(
        reqwest::Method::POST,
        &format!("/v1/ops/bookings/{id}/refund-record"),
        Some(token.as_str()),
        Some(body),
    )
    .await
}

async fn reconcile(sys: &TestSystem) -> Value {
    serde_json::to_value(ops::reconcile::reconcile(&sys.pool).await.unwrap()).unwrap()
}

async fn payment_row(
    sys: &TestSystem,
    id: &str,
) -> (Option<String>, Option<String>, i32, Option<String>) {
    sqlx::query_as(
        "select refund_status, refund_id, refund_retries, refund_recorded_by from payments
          where booking_id = $1 order by attempt desc limit 1",
    )
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .fetch_one(&sys.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_failed_refund_replayed_from_the_dead_letter_queue_is_retried_and_the_booking_refunded() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, customer) = sys.customer(1).await;
    let id = cancel_with_failed_refund(&sys, &customer, "pm_card_refund_fail_once").await;
    let dlq = payments_dlq(&sys);
    let report = reconcile(&sys).await;
    assert_eq!(report["ok"], false, "{report}");

    // The dry run says what the replay will do: back to the saga, a refund retry.
    let op = token(&sys, Role::Operator);
    let (status, dry) = sys
        .call(
            reqwest::Method::POST,
            &format!("/v1/ops/dlq/{dlq}/replay"),
            Some(op.as_str()),
            Some(json!({"all": true, "dry_run": true})),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    let lines = dry["messages"].as_array().unwrap();
    assert!(!lines.is_empty(), "{dry}");
    for l in lines {
        assert_eq!(l["outcome"]["kind"], "would_publish", "{dry}");
        assert_eq!(
            l["outcome"]["to"],
            sys.settings.topology().saga_queue().as_str(),
            "{dry}"
        );
        let detail = l["outcome"]["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("retries the refund of booking {id}")),
            "{detail}"
        );
    }
    // (A read puts the messages back asynchronously.)
    wait_depth(&sys, &dlq, 1).await;
    let text = bookctl(&sys, &["dlq", "replay", &dlq, "--all", "--dry-run"]).await;
    assert!(text.contains("retries the refund of booking"), "{text}");
    assert_eq!(
        payment_row(&sys, &id).await.0.as_deref(),
        Some("failed"),
        "a dry run changes nothing"
    );

    // The replay does what it said: the saga asks the gateway again (a new refund
    // under the retry's own key), which pays; the booking ends refunded.
    wait_depth(&sys, &dlq, 1).await;
    let out = bookctl_json(&sys, &["dlq", "replay", &dlq, "--all"]).await;
    assert!(out["replayed"].as_u64().unwrap() >= 1, "{out}");
    assert_eq!(out["skipped"], json!([]), "{out}");
    let b = wait_status(&sys, &customer, &id, &["refunded"]).await;
    assert_eq!(b["payment"]["refund_status"], "succeeded", "{b}");
    let (_, refund_id, retries, by) = payment_row(&sys, &id).await;
    assert_eq!((retries, by), (1, None));
    assert!(
        refund_id.unwrap().starts_with("re_"),
        "the gateway's refund"
    );
    sys.holds_for(
        Duration::from_secs(2),
        "nothing comes back to the queue",
        || async { queue_depth(&sys, &dlq).await == 0 },
    )
    .await;
    let report = reconcile(&sys).await;
    assert_eq!(report["ok"], true, "{report}");
    sys.shutdown().await;
}

#[tokio::test]
async fn a_refund_made_by_hand_is_recorded_and_the_booking_ends_refunded() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, customer) = sys.customer(1).await;
    let id = cancel_with_failed_refund(&sys, &customer, "pm_card_refund_fail").await;
    let report = reconcile(&sys).await;
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "refund_failed"),
        "{report}"
    );
    let op = token(&sys, Role::Operator);
    let record = |t: String, body: Value| record_by_hand(&sys, t, id.clone(), body);

    // Bad input and the wrong caller change nothing.
    let (status, _) = record(
        customer.clone(),
        json!({"refund_id": "bank-1", "note": "wired"}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = record(op.clone(), json!({"refund_id": "bank 1", "note": "wired"})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = record(op.clone(), json!({"refund_id": "bank-1", "note": "  "})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = sys
        .call(
            reqwest::Method::POST,
            &format!("/v1/ops/bookings/{}/refund-record", uuid::Uuid::now_v7()),
            Some(op.as_str()),
            Some(json!({"refund_id": "bank-1", "note": "wired"})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(payment_row(&sys, &id).await.0.as_deref(), Some("failed"));

    // The operator refunded by bank transfer and records it.
    let (status, body) = record(
        op.clone(),
        json!({"refund_id": "bank-tx-001", "note": "card closed; refunded by bank transfer"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["refund_id"], "bank-tx-001", "{body}");
    let b = wait_status(&sys, &customer, &id, &["refunded"]).await;
    assert_eq!(b["payment"]["refund_status"], "succeeded", "{b}");
    let (_, refund_id, _, by) = payment_row(&sys, &id).await;
    assert_eq!(refund_id.as_deref(), Some("bank-tx-001"));
    assert!(by.unwrap().starts_with("user "), "who recorded it is kept");
    let report = reconcile(&sys).await;
    assert_eq!(report["ok"], true, "{report}");

    // Recording again is a conflict: there is no failed refund left.
    let (status, body) = record(
        op.clone(),
        json!({"refund_id": "bank-tx-002", "note": "again"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let err = bookctl::cli::run(
        &sys.settings,
        bookctl::cli::parse_from([
            "bookctl",
            "refund",
            "record",
            id.as_str(),
            "--refund-id",
            "x",
            "--note",
            "n",
        ])
        .unwrap(),
        &mut Vec::new(),
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no failed refund"), "{err:#}");

    // The parked message may still be replayed: the saga finds the refund done.
    let dlq = payments_dlq(&sys);
    let out = bookctl_json(&sys, &["dlq", "replay", &dlq, "--all"]).await;
    assert!(out["replayed"].as_u64().unwrap() >= 1, "{out}");
    sys.holds_for(Duration::from_secs(2), "the replay is a no-op", || async {
        queue_depth(&sys, &dlq).await == 0
    })
    .await;
    let (_, b) = sys.booking(&customer, &id).await;
    assert_eq!(b["status"], "refunded", "{b}");
    assert_eq!(
        payment_row(&sys, &id).await.1.as_deref(),
        Some("bank-tx-001")
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn bookctl_records_a_refund_made_by_hand() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, customer) = sys.customer(1).await;
    let id = cancel_with_failed_refund(&sys, &customer, "pm_card_refund_fail").await;
    let out = bookctl_json(
        &sys,
        &[
            "refund",
            "record",
            &id,
            "--refund-id",
            "dash-re-9",
            "--note",
            "refunded in the provider's dashboard",
        ],
    )
    .await;
    assert_eq!(out["recorded"]["refund_id"], "dash-re-9", "{out}");
    wait_status(&sys, &customer, &id, &["refunded"]).await;
    let (status, refund_id, _, by) = payment_row(&sys, &id).await;
    assert_eq!(status.as_deref(), Some("succeeded"));
    assert_eq!(refund_id.as_deref(), Some("dash-re-9"));
    assert_eq!(by.as_deref(), Some("bookctl"));
    sys.shutdown().await;
}

#[tokio::test]
async fn a_message_dead_lettered_again_keeps_every_reason_it_died_for() {
    let sys = spawn_system(SystemOptions::default()).await;
    let topo = sys.settings.topology();
    let dlq = payments_dlq(&sys);
    // A failed refund parked for operators (as the saga parked them before they had
    // an AMQP type) of a booking that has no payment: replayed, the saga refuses it.
    let booking = uuid::Uuid::now_v7();
    let body = json!({"booking_id": booking, "attempt": 1, "problem": "refund_failed",
        "reason": "refund_declined"});
    let headers = platform::amqp::headers::with_reason(
        Default::default(),
        "refund failed: refund_declined",
        &topo.saga_queue(),
    );
    sys.publish_raw("", &dlq, body.to_string().as_bytes(), "parked-1", headers)
        .await;
    wait_depth(&sys, &dlq, 1).await;

    let out = bookctl_json(&sys, &["dlq", "replay", &dlq, "--id", "parked-1"]).await;
    assert_eq!(out["replayed"], 1, "{out}");
    wait_depth(&sys, &dlq, 1).await;
    // It comes back, with its first reason and the new one.
    let m = sys
        .until_some(Duration::from_secs(20), "dead-lettered again", || async {
            let out = bookctl_json(&sys, &["dlq", "show", &dlq]).await;
            out["items"]
                .as_array()
                .and_then(|a| a.first().cloned())
                .filter(|m| m["death_count"] == 2)
        })
        .await;
    let history = m["history"].as_array().unwrap();
    let reasons: Vec<&str> = history
        .iter()
        .map(|h| h["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons[0], "refund failed: refund_declined", "{m}");
    assert!(
        reasons[1].contains(&format!(
            "booking {booking} has no refunded payment attempt 1"
        )),
        "{m}"
    );
    assert!(
        history
            .iter()
            .all(|h| h["source"] == topo.saga_queue().as_str() && h["at"].as_u64().is_some()),
        "{m}"
    );
    assert_eq!(
        m["reason"], reasons[1],
        "the latest reason is the message's reason"
    );
    // `dlq show` and `/v1/ops/dlq/{queue}/messages` show the history.
    wait_depth(&sys, &dlq, 1).await;
    let text = bookctl(&sys, &["dlq", "show", &dlq]).await;
    assert!(
        text.contains("refund failed: refund_declined")
            && text.contains("has no refunded payment attempt"),
        "{text}"
    );
    let op = token(&sys, Role::Operator);
    wait_depth(&sys, &dlq, 1).await;
    let (status, body) = sys
        .call(
            reqwest::Method::GET,
            &format!("/v1/ops/dlq/{dlq}/messages"),
            Some(op.as_str()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"][0]["history"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    sys.shutdown().await;
}
