//! Trust at the payment edge: a correctly signed webhook that names another
//! booking's payment confirms nothing, and a paid booking whose webhook never
//! arrives is confirmed by polling the gateway (also when the command it settles
//! could not be sent at first), and a webhook recorded by an ingress that died before
//! publishing it is published by the gateway's next delivery.

use crate::payments::{book_and_wait, events_of, wait_status};
use serde_json::json;
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

/// The value of the counter `name` on the (first) workers' `/metrics` (0 when absent).
pub(crate) async fn workers_counter(sys: &TestSystem, name: &str) -> f64 {
    sys.workers[0].counter(name).await
}

#[tokio::test]
async fn a_signed_webhook_naming_another_bookings_payment_does_not_confirm_the_booking() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 4).await;
    let (_, token) = sys.customer(1).await;
    // X: two seats, declined (held again). Y: one seat, paid.
    let (status, accepted) = sys
        .submit(
            &token,
            "x",
            json!({"show_id": show.to_string(), "seats": ["A1", "A2"], "payment_method": "pm_card_declined"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let x = sys
        .wait_declined(&token, accepted["booking_id"].as_str().unwrap())
        .await;
    let y = book_and_wait(
        &sys,
        &token,
        "y",
        show,
        &["A3"],
        Some("pm_card_ok"),
        &["confirmed"],
    )
    .await;
    let x_id = x["booking_id"].as_str().unwrap().to_owned();
    let y_payment = y["payment"]["payment_id"].as_str().unwrap();
    let events_before = events_of(&sys, &x_id).await;

    // Someone with the webhook secret says X was paid, with Y's (real, succeeded)
    // payment and its amount.
    let mismatches = "saga_payment_mismatches_total";
    let seen = workers_counter(&sys, mismatches).await;
    let (status, _) = sys
        .signed_webhook(&json!({"id": "evt_cross_booking", "type": "payment.succeeded", "created": 0,
            "data": {"payment_id": y_payment, "booking_id": x_id, "amount": 25000, "currency": "INR"}}))
        .await;
    assert_eq!(status, 200, "a well-signed webhook is accepted");
    sys.eventually(
        Duration::from_secs(10),
        "the saga refuses the other booking's payment",
        || async { workers_counter(&sys, mismatches).await > seen },
    )
    .await;
    let (_, x_now) = sys.booking(&token, &x_id).await;
    assert_eq!(x_now["status"], "held", "{x_now}");
    assert_eq!(x_now["payment"]["status"], "failed", "{x_now}");
    assert_eq!(events_of(&sys, &x_id).await, events_before);
    // X's seats were never sold: released, they are free for anyone.
    let (status, _) = sys
        .post(&token, &format!("/v1/bookings/{x_id}/release"), None)
        .await;
    assert_eq!(status, 202);
    wait_status(&sys, &token, &x_id, &["released"]).await;
    book_and_wait(&sys, &token, "z", show, &["A1", "A2"], None, &["held"]).await;
    sys.shutdown().await;
}

#[tokio::test]
async fn a_paid_booking_whose_webhook_is_lost_is_confirmed_within_seconds() {
    let sys = spawn_system(SystemOptions {
        deliver_webhooks: false,
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    // The hold lasts 8 minutes: only the saga's own poll can confirm this in time.
    let started = std::time::Instant::now();
    let b = book_and_wait(
        &sys,
        &token,
        "k",
        show,
        &["A1"],
        Some("pm_card_ok"),
        &["confirmed"],
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(b["payment"]["status"], "succeeded");
    let n: i64 = sqlx::query_scalar("select count(*) from payment_webhooks")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "no webhook arrived");
    sys.shutdown().await;
}

#[tokio::test]
async fn a_settled_payment_whose_command_could_not_be_sent_is_sent_by_the_next_poll() {
    let sys = spawn_system(SystemOptions {
        deliver_webhooks: false,
        ..SystemOptions::default()
    })
    .await;
    // The broker is away when the poll finds the payment captured (the soak saw it
    // in a RabbitMQ kill): the saga's `PaymentSucceeded` cannot be sent. Before, the
    // payment row was already marked settled and the poll never asked again: the
    // booking stayed `payment_pending` with the money taken until its hold ran out.
    sys.workers[0]
        .arm(tests::Faults {
            saga_send_fail: 1,
            ..Default::default()
        })
        .await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let started = std::time::Instant::now();
    let b = book_and_wait(
        &sys,
        &token,
        "k",
        show,
        &["A2"],
        Some("pm_card_ok"),
        &["confirmed"],
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(b["payment"]["status"], "succeeded");
    assert_eq!(
        sys.workers[0].faults_left().await.saga_send_fail,
        0,
        "the send did fail once"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn a_webhook_recorded_by_an_ingress_that_died_before_publishing_is_published_on_retry() {
    let mut sys = spawn_system(SystemOptions {
        deliver_webhooks: false,
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(1, 2).await;
    let (_, token) = sys.customer(1).await;
    let b = book_and_wait(
        &sys,
        &token,
        "k",
        show,
        &["A1"],
        Some("pm_card_ok"),
        &["confirmed"],
    )
    .await;
    let id = b["booking_id"].as_str().unwrap().to_owned();
    let payment = b["payment"]["payment_id"].as_str().unwrap().to_owned();
    // The saga stops consuming, so the webhooks queue shows what ingress published.
    let w = sys.workers.remove(0);
    w.stop().await;

    // Ingress recorded the event, then died before publishing it: the row is there,
    // unpublished, and nothing reached the saga.
    let event = json!({"id": "evt_crashed", "type": "payment.succeeded", "created": 0,
        "data": {"payment_id": payment, "booking_id": id, "amount": 25000, "currency": "INR"}});
    sqlx::query(
        "insert into payment_webhooks (event_id, type, payment_id, booking_id, payload)
         values ('evt_crashed', 'payment.succeeded', $1, $2, $3)",
    )
    .bind(&payment)
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .bind(&event)
    .execute(&sys.pool)
    .await
    .unwrap();

    // The gateway's retry is not a duplicate: it is published now, once.
    let (status, answer) = sys.signed_webhook(&event).await;
    assert_eq!(
        (status, &answer["duplicate"]),
        (200, &json!(false)),
        "{answer}"
    );
    let (status, answer) = sys.signed_webhook(&event).await;
    assert_eq!(
        (status, &answer["duplicate"]),
        (200, &json!(true)),
        "{answer}"
    );
    let published: bool = sqlx::query_scalar(
        "select published_at is not null from payment_webhooks where event_id = 'evt_crashed'",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert!(published);
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let topo = sys.settings.topology();
    let queued = platform::amqp::queue_counts(&ch, &topo.webhooks_queue())
        .await
        .unwrap()
        .0;
    assert_eq!(queued, 1, "the event reached the saga's queue once");

    // The saga takes it: the queue drains, nothing is dead-lettered, the booking
    // stands confirmed on its payment.
    let w = sys.start_worker(None, Default::default()).await;
    sys.workers.push(w);
    sys.eventually(
        Duration::from_secs(20),
        "the saga consumes the event",
        || async {
            platform::amqp::queue_counts(&ch, &topo.webhooks_queue())
                .await
                .unwrap()
                .0
                == 0
        },
    )
    .await;
    sys.holds_for(
        Duration::from_secs(2),
        "nothing is dead-lettered",
        || async {
            platform::amqp::queue_counts(&ch, &topo.payments_dlq())
                .await
                .unwrap()
                .0
                == 0
        },
    )
    .await;
    let (_, b) = sys.booking(&token, &id).await;
    assert_eq!(b["status"], "confirmed", "{b}");
    assert_eq!(b["payment"]["payment_id"], payment.as_str(), "{b}");
    sys.shutdown().await;
}
