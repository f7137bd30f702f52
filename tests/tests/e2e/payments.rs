//! Payments end to end: the saga, the bundled local gateway (a real HTTP server
//! sending signed webhooks), the sequencer's payment transitions.

use serde_json::json;
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

/// Books `seats` with `method` and waits until the booking reaches one of `want`.
pub(crate) async fn book_and_wait(
    sys: &TestSystem,
    token: &str,
    key: &str,
    show: contracts::ShowId,
    seats: &[&str],
    method: Option<&str>,
    want: &[&str],
) -> serde_json::Value {
    let mut body = json!({"show_id": show.to_string(), "seats": seats});
    if let Some(m) = method {
        body["payment_method"] = json!(m);
    }
    let (status, accepted) = sys.submit(token, key, body).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    wait_status(sys, token, &id, want).await
}

pub(crate) async fn wait_status(
    sys: &TestSystem,
    token: &str,
    id: &str,
    want: &[&str],
) -> serde_json::Value {
    sys.booking_until(token, id, &format!("reached {want:?}"), |b| {
        want.iter().any(|w| b["status"] == *w)
    })
    .await
}

pub(crate) async fn events_of(sys: &TestSystem, id: &str) -> Vec<String> {
    sqlx::query_scalar("select type from booking_events where booking_id = $1 order by seq")
        .bind(id.parse::<uuid::Uuid>().unwrap())
        .fetch_all(&sys.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_card_that_pays_confirms_the_booking_and_sells_its_seats() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(2, 5).await;
    let (_, token) = sys.customer(1).await;
    let b = book_and_wait(
        &sys,
        &token,
        "k",
        show,
        &["A1", "A2"],
        Some("pm_card_ok"),
        &["confirmed"],
    )
    .await;
    let id = b["booking_id"].as_str().unwrap();
    assert_eq!(b["payment"]["status"], "succeeded");
    assert!(
        b["payment"]["payment_id"]
            .as_str()
            .unwrap()
            .starts_with("pi_")
    );
    assert_eq!(
        events_of(&sys, id).await,
        [
            "booking.held",
            "booking.payment_pending",
            "booking.confirmed"
        ]
    );
    // Both processes' /metrics carry the series of the path the booking took.
    let ingress = sys.ingress_metrics().await;
    let workers_addr = sys.workers[0].metrics_addr.expect("workers serve /metrics");
    let workers = sys
        .http
        .get(format!("http://{workers_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (text, series) in [
        (&ingress, "http_request_duration_seconds"),
        (&ingress, "ingress_publish_confirm_seconds"),
        (&ingress, "webhooks_total"),
        (&workers, "runner_batch_size"),
        (&workers, "runner_commit_seconds"),
        (&workers, "sequencer_apply_seconds"),
        (&workers, "saga_payments_total"),
        (&workers, "gateway_call_seconds"),
    ] {
        assert!(text.contains(series), "{series} missing");
    }
    sys.shutdown().await;
}

// Round 2: a decline keeps the seats while the hold lasts (the buyer may try
// another card); the booking fails, and frees them, once the hold runs out.
#[tokio::test]
async fn a_declined_card_fails_the_booking_and_frees_its_seats_once_the_hold_runs_out() {
    let sys = spawn_system(SystemOptions {
        hold_ttl_secs: 2,
        expiry_sweep_ms: 100,
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let (status, accepted) = sys
        .submit(
            &token,
            "k",
            json!({"show_id": show.to_string(), "seats": ["A2"], "payment_method": "pm_card_declined"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    let held = sys.wait_declined(&token, &id).await;
    assert_eq!(held["payment"]["decline_reason"], "card_declined", "{held}");
    let b = wait_status(&sys, &token, &id, &["failed"]).await;
    assert_eq!(b["reason"], "payment_failed");
    assert_eq!(b["payment"]["status"], "failed");
    // The seat is free again.
    let b2 = book_and_wait(
        &sys,
        &token,
        "k2",
        show,
        &["A2"],
        None,
        &["held", "rejected"],
    )
    .await;
    assert_eq!(b2["status"], "held");
    sys.shutdown().await;
}

#[tokio::test]
async fn gateway_errors_and_timeouts_are_retried_into_one_payment() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 4).await;
    let (_, token) = sys.customer(1).await;
    let a = book_and_wait(
        &sys,
        &token,
        "err",
        show,
        &["A1"],
        Some("pm_card_error"),
        &["confirmed"],
    )
    .await;
    let t = book_and_wait(
        &sys,
        &token,
        "slow",
        show,
        &["A2"],
        Some("pm_card_timeout"),
        &["confirmed"],
    )
    .await;
    for b in [a, t] {
        let id: uuid::Uuid = b["booking_id"].as_str().unwrap().parse().unwrap();
        // One payment row, one payment id at the gateway, confirmed once.
        let n: i64 = sqlx::query_scalar("select count(*) from payments where booking_id = $1")
            .bind(id)
            .fetch_one(&sys.pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let confirmed: i64 = sqlx::query_scalar(
            "select count(*) from booking_events where booking_id = $1 and type = 'booking.confirmed'",
        )
        .bind(id)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
        assert_eq!(confirmed, 1);
    }
    sys.shutdown().await;
}

#[tokio::test]
async fn a_forged_or_stale_webhook_is_refused_and_changes_nothing() {
    let sys = spawn_system(SystemOptions::default()).await;
    let body = json!({"id": "evt_forged", "type": "payment.succeeded", "created": 0,
        "data": {"payment_id": "pi_x", "booking_id": uuid::Uuid::now_v7(), "amount": 100, "currency": "INR"}})
    .to_string();
    let now = platform::now_millis().0 / 1000;
    let cases = [
        payment_adapter::signature::sign(b"not-the-secret", now, body.as_bytes()),
        payment_adapter::signature::sign(b"whsec_local_development", now - 600, body.as_bytes()),
        "t=1,v1=deadbeef".to_owned(),
    ];
    for sig in cases {
        let res = sys
            .http
            .post(sys.url("/v1/payments/webhook"))
            .header("Gateway-Signature", sig)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let res = sys
        .http
        .post(sys.url("/v1/payments/webhook"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "no signature at all");
    let n: i64 = sqlx::query_scalar("select count(*) from payment_webhooks")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    sys.shutdown().await;
}

#[tokio::test]
async fn duplicated_and_reordered_webhooks_are_harmless() {
    let base = SystemOptions::default();
    let sys = spawn_system(SystemOptions {
        gateway: local_gateway::LocalGatewayConfig {
            duplicate_webhooks: 1.0,
            reorder_webhooks_ms: 200,
            seed: Some(7),
            ..base.gateway.clone()
        },
        ..base
    })
    .await;
    let show = sys.show(2, 5).await;
    let (_, token) = sys.customer(1).await;
    let mut ids = vec![];
    for (i, (seat, pm)) in [
        ("A1", "pm_card_ok"),
        ("A2", "pm_card_declined"),
        ("A3", "pm_card_ok"),
        ("A4", "pm_card_declined"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = json!({"show_id": show.to_string(), "seats": [seat]});
        body["payment_method"] = json!(pm);
        let (status, accepted) = sys.submit(&token, &format!("k{i}"), body).await;
        assert_eq!(status, 202, "{accepted}");
        let id = accepted["booking_id"].as_str().unwrap().to_owned();
        // A declined card leaves the booking held again (Round 2), paid is confirmed.
        let b = if pm == "pm_card_ok" {
            wait_status(&sys, &token, &id, &["confirmed"]).await
        } else {
            sys.wait_declined(&token, &id).await
        };
        assert_eq!(b["payment"]["attempts"], 1, "{b}");
        ids.push(id);
    }
    // Once every webhook's duplicate has landed (the gateway delivers each event
    // twice; ingress records it once and counts each delivery, as `accepted` or, when
    // it was handed over already, `duplicate`): one outcome event per booking.
    sys.eventually(
        Duration::from_secs(20),
        "every webhook's duplicate lands",
        || async {
            let metrics = sys.ingress_metrics().await;
            let outcome = |o: &str| -> f64 {
                let series = format!("webhooks_total{{outcome=\"{o}\"}}");
                metrics
                    .lines()
                    .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
                    .unwrap_or(0.0)
            };
            let recorded: i64 = sqlx::query_scalar("select count(*) from payment_webhooks")
                .fetch_one(&sys.pool)
                .await
                .unwrap();
            recorded >= 4
                && outcome("accepted") + outcome("duplicate") >= 2.0 * recorded as f64
                && outcome("duplicate") > 0.0
        },
    )
    .await;
    for id in &ids {
        let ev = events_of(&sys, id).await;
        assert_eq!(ev.len(), 3, "{id}: {ev:?}");
    }
    sys.shutdown().await;
}

#[tokio::test]
async fn a_slow_payment_outliving_its_hold_is_cancelled_and_the_booking_fails() {
    let base = SystemOptions::default();
    let sys = spawn_system(SystemOptions {
        hold_ttl_secs: 1,
        expiry_sweep_ms: 100,
        gateway: local_gateway::LocalGatewayConfig {
            // Settles well after the 1 s hold: the sweep must win even on a busy
            // machine (2.5 s was once too close under a load average of 8).
            slow_delay_ms: 6000,
            ..base.gateway.clone()
        },
        ..base
    })
    .await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    // The hold runs out while the payment is pending: the saga asks the gateway,
    // cancels the payment still processing, and the booking fails without money.
    let b = book_and_wait(
        &sys,
        &token,
        "slow",
        show,
        &["A1"],
        Some("pm_card_slow"),
        &["failed", "confirmed"],
    )
    .await;
    assert_eq!(b["status"], "failed", "{b}");
    assert_eq!(b["payment"]["status"], "canceled", "{b}");
    sys.shutdown().await;
}

/// Money arriving late for the expired booking `id` (25,000 INR): a payment created
/// at the gateway for it, as a slow provider would, and recorded pending.
pub(crate) async fn late_payment(sys: &TestSystem, show: contracts::ShowId, id: &str) {
    let booking: contracts::BookingId = id.parse().unwrap();
    sqlx::query(
        "insert into payments (booking_id, show_id, method, amount, currency, status)
         values ($1, $2, 'pm_card_ok', 25000, 'INR', 'pending')",
    )
    .bind(booking.0)
    .bind(show.0)
    .execute(&sys.pool)
    .await
    .unwrap();
    let pi = payment_adapter::PaymentGateway::create_payment(
        &sys.gateway(),
        &payment_adapter::CreatePayment {
            booking_id: booking,
            amount: 25000,
            currency: "INR".into(),
            payment_method: "pm_card_ok".into(),
        },
        &format!("late-{id}"),
    )
    .await
    .unwrap();
    sqlx::query("update payments set payment_id = $2 where booking_id = $1")
        .bind(booking.0)
        .bind(&pi.id)
        .execute(&sys.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_late_success_retakes_free_seats_and_refunds_resold_ones() {
    let sys = spawn_system(SystemOptions {
        hold_ttl_secs: 1,
        expiry_sweep_ms: 100,
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(1, 4).await;
    let (user, token) = sys.customer(1).await;

    // Two bookings held without paying; both expire.
    let a = book_and_wait(&sys, &token, "a", show, &["A1"], None, &["held"]).await;
    let b = book_and_wait(&sys, &token, "b", show, &["A2"], None, &["held"]).await;
    let a_id = a["booking_id"].as_str().unwrap().to_owned();
    let b_id = b["booking_id"].as_str().unwrap().to_owned();
    wait_status(&sys, &token, &a_id, &["expired"]).await;
    wait_status(&sys, &token, &b_id, &["expired"]).await;
    // A2 is resold to someone else.
    let (_, other) = sys.customer(2).await;
    book_and_wait(&sys, &other, "c", show, &["A2"], None, &["held"]).await;

    // Money arrives late for both (a payment created at the gateway for the
    // expired bookings, as a slow provider would): the saga learns it by webhook.
    for id in [&a_id, &b_id] {
        late_payment(&sys, show, id).await;
    }
    let a = wait_status(&sys, &token, &a_id, &["confirmed"]).await;
    assert_eq!(a["seats"], json!(["A1"]));
    let b = wait_status(&sys, &token, &b_id, &["refunded"]).await;
    assert_eq!(b["payment"]["refund_status"], "succeeded", "{b}");
    let _ = user;
    sys.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_confirmed_booking_returns_its_seats_and_refunds_it() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let b = book_and_wait(
        &sys,
        &token,
        "k",
        show,
        &["A3"],
        Some("pm_card_ok"),
        &["confirmed"],
    )
    .await;
    let id = b["booking_id"].as_str().unwrap().to_owned();
    // Only confirmed bookings can be cancelled; someone else's is not found.
    let (_, stranger) = sys.customer(2).await;
    let (status, _) = sys
        .post(&stranger, &format!("/v1/bookings/{id}/cancel"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = sys
        .post(&token, &format!("/v1/bookings/{id}/cancel"), None)
        .await;
    assert_eq!(status, 202);
    let b = wait_status(&sys, &token, &id, &["refunded"]).await;
    // 10% cancellation fee by default.
    assert_eq!(b["payment"]["refund_amount"], 22_500, "{b}");
    let again = book_and_wait(
        &sys,
        &token,
        "k2",
        show,
        &["A3"],
        None,
        &["held", "rejected"],
    )
    .await;
    assert_eq!(again["status"], "held", "the seat is back on sale");
    let (status, _) = sys
        .post(&token, &format!("/v1/bookings/{id}/cancel"), None)
        .await;
    assert_eq!(status, 409);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_refund_that_fails_for_good_reaches_the_dead_letter_queue() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let b = book_and_wait(
        &sys,
        &token,
        "k",
        show,
        &["A1"],
        Some("pm_card_refund_fail"),
        &["confirmed"],
    )
    .await;
    let id = b["booking_id"].as_str().unwrap().to_owned();
    let (status, _) = sys
        .post(&token, &format!("/v1/bookings/{id}/cancel"), None)
        .await;
    assert_eq!(status, 202);
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let dlq = sys.settings.topology().payments_dlq();
    sys.eventually(
        Duration::from_secs(20),
        "the failed refund is dead-lettered",
        || async { platform::amqp::queue_counts(&ch, &dlq).await.unwrap().0 >= 1 },
    )
    .await;
    drop(conn.close(200, "looked".into()).await);
    // The dead letter and the booking's refund status are written by different
    // steps: the status is waited for, not read once.
    sys.eventually(
        Duration::from_secs(20),
        "the booking is cancelled with its refund failed",
        || async {
            let (_, b) = sys.booking(&token, &id).await;
            b["status"] == "cancelled" && b["payment"]["refund_status"] == "failed"
        },
    )
    .await;
    sys.shutdown().await;
}

#[tokio::test]
async fn a_held_booking_can_be_paid_afterwards() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let b = book_and_wait(&sys, &token, "k", show, &["A1"], None, &["held"]).await;
    let id = b["booking_id"].as_str().unwrap().to_owned();
    let (status, _) = sys
        .post(
            &token,
            &format!("/v1/bookings/{id}/payment"),
            Some(json!({"payment_method": "pm_card_ok"})),
        )
        .await;
    assert_eq!(status, 202);
    let b = wait_status(&sys, &token, &id, &["confirmed"]).await;
    assert_eq!(b["payment"]["method"], "pm_card_ok");
    // Paying it again is a conflict.
    let (status, _) = sys
        .post(
            &token,
            &format!("/v1/bookings/{id}/payment"),
            Some(json!({"payment_method": "pm_card_ok"})),
        )
        .await;
    assert_eq!(status, 409);
    sys.shutdown().await;
}

#[tokio::test]
async fn an_unhandleable_webhook_is_parked_with_its_id_and_source_queue() {
    let sys = spawn_system(SystemOptions::default()).await;
    let topo = sys.settings.topology();
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_publish(
        "".into(),
        topo.webhooks_queue().into(),
        Default::default(),
        b"{\"not\": \"a webhook\"}",
        platform::amqp::json_properties("poison-webhook", Default::default()),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let mut got = None;
    for _ in 0..100 {
        got = ch
            .basic_get(
                topo.payments_dlq().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap();
        if got.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = got.expect("the webhook reaches the payments dead-letter queue");
    assert_eq!(
        m.properties.message_id().as_ref().map(|m| m.to_string()),
        Some("poison-webhook".to_owned())
    );
    let headers = m.properties.headers().clone().unwrap();
    match headers.inner().get("x-source-queue") {
        Some(lapin::types::AMQPValue::LongString(s)) => {
            assert_eq!(
                s.to_string(),
                topo.webhooks_queue(),
                "a replay goes back to the webhooks queue"
            )
        }
        other => panic!("no source queue: {other:?}"),
    }
    sys.shutdown().await;
}
