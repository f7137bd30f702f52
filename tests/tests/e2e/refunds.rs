//! Refunds when their webhooks are lost or forged, and reconciliation against the
//! gateway's own payments and refunds.

use crate::payments::{book_and_wait, events_of, late_payment, wait_status};
use crate::webhooks::workers_counter;
use serde_json::json;
use std::time::{Duration, Instant};
use tests::Faults;
use tests::{BOOKING_WAIT, SystemOptions, TestSystem, spawn_system};

/// A system whose gateway never delivers a webhook: only the saga's polls settle.
fn webhooks_lost() -> SystemOptions {
    SystemOptions {
        deliver_webhooks: false,
        ..SystemOptions::default()
    }
}

/// The booking's payment attempts: (refund status, refund id).
async fn refunds_of(sys: &TestSystem, id: &str) -> Vec<(Option<String>, Option<String>)> {
    sqlx::query_as(
        "select refund_status, refund_id from payments where booking_id = $1 order by attempt",
    )
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .fetch_all(&sys.pool)
    .await
    .unwrap()
}

async fn webhooks_received(sys: &TestSystem) -> i64 {
    sqlx::query_scalar("select count(*) from payment_webhooks")
        .fetch_one(&sys.pool)
        .await
        .unwrap()
}

/// Books one seat with a card that pays and waits for the confirmation.
async fn paid(
    sys: &TestSystem,
    token: &str,
    key: &str,
    show: contracts::ShowId,
    seat: &str,
) -> String {
    let b = book_and_wait(
        sys,
        token,
        key,
        show,
        &[seat],
        Some("pm_card_ok"),
        &["confirmed"],
    )
    .await;
    b["booking_id"].as_str().unwrap().to_owned()
}

/// Cancels the confirmed booking `id` and waits until it is refunded.
async fn cancel_and_refund(sys: &TestSystem, token: &str, id: &str) -> serde_json::Value {
    let (status, _) = sys
        .post(token, &format!("/v1/bookings/{id}/cancel"), None)
        .await;
    assert_eq!(status, 202);
    wait_status(sys, token, id, &["refunded"]).await
}

#[tokio::test]
async fn a_cancelled_booking_whose_refund_webhook_is_lost_is_refunded_within_seconds() {
    let sys = spawn_system(webhooks_lost()).await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let id = paid(&sys, &token, "k", show, "A1").await;
    let started = Instant::now();
    let b = cancel_and_refund(&sys, &token, &id).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(b["payment"]["refund_status"], "succeeded", "{b}");
    let refunds = refunds_of(&sys, &id).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].0.as_deref(), Some("succeeded"));
    assert!(
        refunds[0].1.as_deref().unwrap().starts_with("re_"),
        "{refunds:?}"
    );
    assert_eq!(webhooks_received(&sys).await, 0, "no webhook arrived");
    let report = sys.reconcile().await;
    assert!(report.ok, "{:#?}", report.problems);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_settled_refund_whose_command_could_not_be_sent_is_sent_by_the_next_poll() {
    let sys = spawn_system(webhooks_lost()).await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let id = paid(&sys, &token, "k", show, "A1").await;
    // The broker is away when the poll finds the refund done (the soak saw it in a
    // RabbitMQ stop): `RefundCompleted` cannot be sent. Before, the refund row was
    // already marked succeeded and the poll never asked again: the booking stayed
    // `cancelled`, the money returned, for good.
    sys.workers[0]
        .arm(tests::Faults {
            saga_send_fail: 1,
            ..Default::default()
        })
        .await;
    let b = cancel_and_refund(&sys, &token, &id).await;
    assert_eq!(b["payment"]["refund_status"], "succeeded", "{b}");
    assert_eq!(
        sys.workers[0].faults_left().await.saga_send_fail,
        0,
        "the send did fail once"
    );
    let report = sys.reconcile().await;
    assert!(report.ok, "{:#?}", report.problems);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_late_payment_refused_is_refunded_without_its_webhooks() {
    let sys = spawn_system(SystemOptions {
        hold_ttl_secs: 1,
        expiry_sweep_ms: 100,
        ..webhooks_lost()
    })
    .await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let late = book_and_wait(&sys, &token, "late", show, &["A1"], None, &["held"]).await;
    let late = late["booking_id"].as_str().unwrap().to_owned();
    wait_status(&sys, &token, &late, &["expired"]).await;
    // The seat is sold again (paid: a hold would run out before the late money is
    // polled); then the money of the expired booking arrives.
    let (_, other) = sys.customer(2).await;
    paid(&sys, &other, "again", show, "A1").await;
    late_payment(&sys, show, &late).await;
    let b = wait_status(&sys, &token, &late, &["refunded"]).await;
    assert_eq!(b["payment"]["refund_status"], "succeeded", "{b}");
    assert!(
        events_of(&sys, &late)
            .await
            .contains(&"booking.late_payment_refused".to_owned())
    );
    assert_eq!(webhooks_received(&sys).await, 0, "no webhook arrived");
    sys.shutdown().await;
}

#[tokio::test]
async fn a_refund_that_never_reached_the_gateway_is_requested_again_under_its_key() {
    // The workers reach the gateway through a proxy the test can cut.
    let mut sys = spawn_system(SystemOptions {
        workers: 0,
        ..webhooks_lost()
    })
    .await;
    let target = sys.gateway_url.trim_start_matches("http://").to_owned();
    let proxy = tests::proxy::TcpProxy::start(target).await.unwrap();
    sys.settings.payments.gateway_url = format!("http://127.0.0.1:{}", proxy.port);
    let worker = sys.start_worker(None, Faults::default()).await;
    sys.workers.push(worker);
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let id = paid(&sys, &token, "k", show, "A1").await;
    let payment = payment_of(&sys, &id).await;

    // The gateway is out of reach while the booking is cancelled: the saga records
    // the refund requested, cannot reach the gateway, and stops; its event is lost
    // (dead-lettered after its tries, or a crash at the wrong moment).
    proxy.cut();
    let (status, _) = sys
        .post(&token, &format!("/v1/bookings/{id}/cancel"), None)
        .await;
    assert_eq!(status, 202);
    sys.until_some(BOOKING_WAIT, "the refund is recorded requested", || async {
        let r = refunds_of(&sys, &id).await;
        (r == [(Some("requested".to_owned()), None)]).then_some(())
    })
    .await;
    let old = sys.workers.pop().unwrap();
    old.stop().await;
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_purge(
        sys.settings.topology().saga_queue().into(),
        lapin::options::QueuePurgeOptions::default(),
    )
    .await
    .unwrap();
    drop(conn.close(200, "done".into()).await);
    assert_eq!(
        refunds_of(&sys, &id).await,
        [(Some("requested".to_owned()), None)],
        "nothing reached the gateway"
    );
    // A process started once the gateway is back asks at once.
    proxy.restore();
    let worker = sys.start_worker(None, Faults::default()).await;
    sys.workers.push(worker);
    let b = wait_status(&sys, &token, &id, &["refunded"]).await;
    assert_eq!(b["payment"]["refund_amount"], 22_500, "{b}");
    // One refund at the gateway, made under the attempt's refund key.
    let gateway = sys.gateway();
    let refund_id = refunds_of(&sys, &id).await[0].1.clone().unwrap();
    let again = payment_adapter::PaymentGateway::refund(
        &gateway,
        &payment,
        22_500,
        &format!("{id}-refund"),
    )
    .await
    .unwrap();
    assert_eq!(again.id, refund_id);
    let pi = payment_adapter::PaymentGateway::get_payment(&gateway, &payment)
        .await
        .unwrap();
    assert_eq!(pi.amount_refunded, 22_500);
    let report = sys.reconcile().await;
    assert!(report.ok, "{:#?}", report.problems);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_signed_refund_webhook_naming_another_bookings_refund_refunds_nothing() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 4).await;
    let (_, token) = sys.customer(1).await;
    // X: cancelled, its refund refused by the gateway (operators must act). Y:
    // cancelled and refunded.
    let x = book_and_wait(
        &sys,
        &token,
        "x",
        show,
        &["A1"],
        Some("pm_card_refund_fail"),
        &["confirmed"],
    )
    .await;
    let x_payment = x["payment"]["payment_id"].as_str().unwrap().to_owned();
    let x = x["booking_id"].as_str().unwrap().to_owned();
    let (status, _) = sys
        .post(&token, &format!("/v1/bookings/{x}/cancel"), None)
        .await;
    assert_eq!(status, 202);
    let x_refunds = sys
        .until_some(BOOKING_WAIT, "X's refund fails at the gateway", || async {
            let r = refunds_of(&sys, &x).await;
            (r[0].0.as_deref() == Some("failed") && r[0].1.is_some()).then_some(r)
        })
        .await;
    let y = paid(&sys, &token, "y", show, "A2").await;
    cancel_and_refund(&sys, &token, &y).await;
    let y_refund = refunds_of(&sys, &y).await[0].1.clone().unwrap();
    let x_events = events_of(&sys, &x).await;

    // Someone with the webhook secret says X was refunded: with Y's real refund,
    // then with an id the gateway never made.
    let mismatches = "saga_refund_mismatches_total";
    for (n, refund) in [y_refund.as_str(), "re_made_up"].into_iter().enumerate() {
        let seen = workers_counter(&sys, mismatches).await;
        let (status, _) = sys
            .signed_webhook(&json!({"id": format!("evt_forged_refund_{n}"),
                "type": "refund.succeeded", "created": 0,
                "data": {"payment_id": x_payment, "booking_id": x, "amount": 22500,
                         "currency": "INR", "refund_id": refund}}))
            .await;
        assert_eq!(status, 200, "a well-signed webhook is accepted");
        sys.eventually(
            Duration::from_secs(10),
            "the saga refuses a refund that is not the booking's",
            || async { workers_counter(&sys, mismatches).await > seen },
        )
        .await;
    }
    let (_, x_now) = sys.booking(&token, &x).await;
    assert_eq!(x_now["status"], "cancelled", "{x_now}");
    assert_eq!(refunds_of(&sys, &x).await, x_refunds);
    assert_eq!(events_of(&sys, &x).await, x_events);
    sys.shutdown().await;
}

async fn payment_of(sys: &TestSystem, id: &str) -> String {
    sqlx::query_scalar("select payment_id from bookings where id = $1")
        .bind(id.parse::<uuid::Uuid>().unwrap())
        .fetch_one(&sys.pool)
        .await
        .unwrap()
}

/// The problems of `kind` about `booking` in a report.
fn problems_of<'a>(report: &'a ops::reconcile::Report, kind: &str, booking: &str) -> Vec<&'a str> {
    report
        .problems
        .iter()
        .filter(|p| {
            p.kind == kind && p.booking_id.map(|b| b.to_string()).as_deref() == Some(booking)
        })
        .map(|p| p.detail.as_str())
        .collect()
}

#[tokio::test]
async fn reconciliation_compares_payments_and_refunds_with_the_gateway() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 6).await;
    let (_, token) = sys.customer(1).await;
    let x = paid(&sys, &token, "x", show, "A1").await;
    let y = paid(&sys, &token, "y", show, "A2").await;
    let z = paid(&sys, &token, "z", show, "A3").await;
    let w = paid(&sys, &token, "w", show, "A4").await;
    cancel_and_refund(&sys, &token, &w).await;
    let report = sys.reconcile().await;
    assert!(report.ok, "a clean run agrees: {:#?}", report.problems);

    // Finding 4's trace, forged: X and Y each recorded with the other's payment.
    let (pi_x, pi_y) = (payment_of(&sys, &x).await, payment_of(&sys, &y).await);
    for (booking, to) in [(&x, "forging"), (&y, pi_x.as_str()), (&x, pi_y.as_str())] {
        for table in ["payments", "bookings"] {
            let column = if table == "payments" {
                "booking_id"
            } else {
                "id"
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "update {table} set payment_id = $2 where {column} = $1"
            )))
            .bind(booking.parse::<uuid::Uuid>().unwrap())
            .bind(to)
            .execute(&sys.pool)
            .await
            .unwrap();
        }
    }
    // Z recorded at another price; W's refund recorded with an id the gateway never made.
    sqlx::query("update bookings set amount = amount + 100 where id = $1")
        .bind(z.parse::<uuid::Uuid>().unwrap())
        .execute(&sys.pool)
        .await
        .unwrap();
    sqlx::query("update payments set refund_id = 're_forged' where booking_id = $1")
        .bind(w.parse::<uuid::Uuid>().unwrap())
        .execute(&sys.pool)
        .await
        .unwrap();
    // And money captured at the gateway that no booking records.
    let stray = uuid::Uuid::now_v7();
    let pi = payment_adapter::PaymentGateway::create_payment(
        &sys.gateway(),
        &payment_adapter::CreatePayment {
            booking_id: contracts::BookingId(stray),
            amount: 25_000,
            currency: "INR".into(),
            payment_method: "pm_card_ok".into(),
        },
        "stray",
    )
    .await
    .unwrap();

    // The database alone sees only Z (its capture is not the amount it held); the
    // swapped payments, the forged refund and the stray capture take the gateway.
    let db_only = ops::reconcile::reconcile(&sys.pool).await.unwrap();
    assert_eq!(
        problems_of(&db_only, "captured_amount_differs", &z).len(),
        1,
        "{:#?}",
        db_only.problems
    );
    assert_eq!(db_only.problems.len(), 1, "{:#?}", db_only.problems);
    let report = sys
        .until_some(
            Duration::from_secs(10),
            "the stray capture settles",
            || async {
                let r = sys.reconcile().await;
                (!problems_of(&r, "gateway_capture_unaccounted", &stray.to_string()).is_empty())
                    .then_some(r)
            },
        )
        .await;
    assert!(!report.ok);
    let x_why = problems_of(&report, "gateway_payment_mismatch", &x);
    assert!(
        x_why
            .iter()
            .any(|d| d.contains(&format!("belongs to booking {y}"))),
        "{x_why:?}"
    );
    let y_why = problems_of(&report, "gateway_payment_mismatch", &y);
    assert!(
        y_why
            .iter()
            .any(|d| d.contains(&format!("belongs to booking {x}"))),
        "{y_why:?}"
    );
    let z_why = problems_of(&report, "gateway_payment_mismatch", &z);
    assert!(
        z_why.iter().any(|d| d.contains("25000 INR at the gateway")),
        "{z_why:?}"
    );
    let w_why = problems_of(&report, "gateway_refund_mismatch", &w);
    assert!(w_why.iter().any(|d| d.contains("re_forged")), "{w_why:?}");
    let stray_why = problems_of(&report, "gateway_capture_unaccounted", &stray.to_string());
    assert!(
        stray_why.iter().any(|d| d.contains(&pi.id)),
        "{stray_why:?}"
    );
    // The five the gateway shows, and Z's held amount from the database.
    assert_eq!(report.problems.len(), 6, "{:#?}", report.problems);

    // The operators' view says the same.
    let (_, operator) = sys.user_with_role(auth::Role::Operator).await;
    let (status, api) = sys
        .call(
            reqwest::Method::GET,
            "/v1/ops/reconcile",
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["ok"], false, "{api}");
    assert_eq!(api["problems"].as_array().unwrap().len(), 6, "{api}");
    sys.shutdown().await;
}
