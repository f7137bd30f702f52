//! SMS (issue 14): phone verification by a code through the local SMS provider
//! (Twilio's Messages API shape), the `notify` preference, and booking SMS sent once
//! per event beside the email, retried on a failing provider, dead-lettered when it
//! keeps failing.

use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn call(
    sys: &TestSystem,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = match method {
        "GET" => sys.http.get(sys.url(path)),
        "PATCH" => sys.http.patch(sys.url(path)),
        _ => sys.http.post(sys.url(path)),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The 6-digit code of the last SMS to `phone`.
fn code_sent_to(sys: &TestSystem, phone: &str) -> Option<String> {
    let m = sys
        .sms_messages()
        .into_iter()
        .rev()
        .find(|m| m.to == phone)?;
    m.body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_owned)
}

#[tokio::test]
async fn a_phone_is_verified_by_the_sms_code_and_a_changed_phone_is_not() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, token) = sys.customer(1).await;
    let phone = "+919812345678";
    // Not E.164: 422, nothing sent.
    let (status, body) = call(
        &sys,
        &token,
        "POST",
        "/v1/me/phone/verify",
        Some(json!({"phone": "98123 45678"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(sys.sms_messages().is_empty());
    // Nothing pending yet: 409.
    let (status, body) = call(
        &sys,
        &token,
        "POST",
        "/v1/me/phone/confirm",
        Some(json!({"code": "123456"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("no_pending_code")),
        "{body}"
    );

    let (status, body) = call(
        &sys,
        &token,
        "POST",
        "/v1/me/phone/verify",
        Some(json!({"phone": phone})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let code = sys
        .until_some(WAIT, "the code's SMS", || async {
            code_sent_to(&sys, phone)
        })
        .await;
    let sms = sys.sms_messages();
    assert_eq!(sms.len(), 1);
    assert!(sms[0].sid.starts_with("SM"), "{sms:?}");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = call(
        &sys,
        &token,
        "POST",
        "/v1/me/phone/confirm",
        Some(json!({"code": wrong})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("wrong_code")),
        "{body}"
    );
    let (_, me) = call(&sys, &token, "GET", "/v1/me", None).await;
    assert_eq!(me["phone_verified"], false, "{me}");
    // Not even digits: 422 too, and no try spent.
    let (status, _) = call(
        &sys,
        &token,
        "POST",
        "/v1/me/phone/confirm",
        Some(json!({"code": "abc"})),
    )
    .await;
    assert_eq!(status, 422);

    let (status, body) = call(
        &sys,
        &token,
        "POST",
        "/v1/me/phone/confirm",
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, me) = call(&sys, &token, "GET", "/v1/me", None).await;
    assert_eq!(
        (me["phone"].as_str(), me["phone_verified"].as_bool()),
        (Some(phone), Some(true)),
        "{me}"
    );
    // The code worked once.
    let (status, _) = call(
        &sys,
        &token,
        "POST",
        "/v1/me/phone/confirm",
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(status, 409);

    // The same phone again keeps it verified; another one does not.
    let (status, me) = call(
        &sys,
        &token,
        "PATCH",
        "/v1/me",
        Some(json!({"phone": phone})),
    )
    .await;
    assert_eq!(
        (status, me["phone_verified"].as_bool()),
        (200, Some(true)),
        "{me}"
    );
    let (status, me) = call(
        &sys,
        &token,
        "PATCH",
        "/v1/me",
        Some(json!({"phone": "+919800000000"})),
    )
    .await;
    assert_eq!(
        (status, me["phone_verified"].as_bool()),
        (200, Some(false)),
        "{me}"
    );

    // The notify preference: validated, stored, email by default.
    assert_eq!(me["preferences"]["notify"], json!(["email"]), "{me}");
    for bad in [json!(["fax"]), json!([]), json!("sms")] {
        let (status, body) = call(
            &sys,
            &token,
            "PATCH",
            "/v1/me",
            Some(json!({"preferences": {"notify": bad}})),
        )
        .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, me) = call(
        &sys,
        &token,
        "PATCH",
        "/v1/me",
        Some(json!({"preferences": {"notify": ["sms", "email"]}})),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["preferences"]["notify"], json!(["email", "sms"]), "{me}");
    sys.shutdown().await;
}

/// A customer with `notify` and a phone (verified or not), straight in the database.
pub(crate) async fn customer_with(
    sys: &TestSystem,
    n: usize,
    notify: Value,
    phone: &str,
    verified: bool,
) -> (Uuid, String) {
    let (user, token) = sys.customer(n).await;
    sqlx::query(
        "update users set phone = $2, preferences = $3,
                phone_verified_at = case when $4 then now() end where id = $1",
    )
    .bind(user.0)
    .bind(phone)
    .bind(json!({"notify": notify}))
    .bind(verified)
    .execute(&sys.pool)
    .await
    .unwrap();
    (user.0, token)
}

async fn book_paid(sys: &TestSystem, token: &str, key: &str) -> Uuid {
    let show = sys.show(1, 5).await;
    let body =
        json!({"show_id": show.to_string(), "seats": ["A2"], "payment_method": "pm_card_ok"});
    let (status, accepted) = sys.submit(token, key, body).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    sys.eventually(WAIT, "the booking is confirmed", || async {
        sys.booking(token, &id).await.1["status"] == "confirmed"
    })
    .await;
    id.parse().unwrap()
}

/// The (channel, status) rows of the booking's confirmation.
async fn sends(sys: &TestSystem, booking: Uuid) -> Vec<(String, String)> {
    sends_of(sys, booking, "confirmed").await
}

/// The (channel, status) rows of the booking's `template` message, by channel.
pub(crate) async fn sends_of(
    sys: &TestSystem,
    booking: Uuid,
    template: &str,
) -> Vec<(String, String)> {
    sqlx::query_as(
        "select channel, status from sent_messages
          where booking_id = $1 and template = $2 order by channel",
    )
    .bind(booking)
    .bind(template)
    .fetch_all(&sys.pool)
    .await
    .unwrap()
}

/// `channels` sent.
pub(crate) fn sent(channels: &[&str]) -> Vec<(String, String)> {
    channels
        .iter()
        .map(|c| ((*c).to_owned(), "sent".to_owned()))
        .collect()
}

#[tokio::test]
async fn a_confirmation_goes_by_sms_once_only_to_a_verified_phone_that_asked_for_it() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, both) = customer_with(&sys, 1, json!(["email", "sms"]), "+919811111111", true).await;
    let (_, email_only) = customer_with(&sys, 2, json!(["email"]), "+919822222222", true).await;
    let (_, unverified) =
        customer_with(&sys, 3, json!(["email", "sms"]), "+919833333333", false).await;
    let b1 = book_paid(&sys, &both, "k1").await;
    let b2 = book_paid(&sys, &email_only, "k2").await;
    let b3 = book_paid(&sys, &unverified, "k3").await;
    for (b, want) in [
        (b1, sent(&["email", "sms"])),
        (b2, sent(&["email"])),
        (b3, sent(&["email"])),
    ] {
        sys.eventually(WAIT, "the confirmation's sends are recorded", || async {
            sends(&sys, b).await == want
        })
        .await;
    }
    assert_eq!(sys.wait_emails(3, WAIT).await.len(), 3);
    let sms = sys.sms_messages();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0].to, "+919811111111");
    assert!(sms[0].body.starts_with("Confirmed:"), "{}", sms[0].body);
    assert!(sms[0].body.contains("Seats A2"), "{}", sms[0].body);
    assert!(
        sms[0].body.contains(&b1.simple().to_string()[..8]),
        "{}",
        sms[0].body
    );

    // The event delivered twice more (as the broker would redeliver it): nothing
    // more is sent. A later booking's SMS shows the copies were consumed before it.
    let (event_id, payload): (Uuid, Value) = sqlx::query_as(
        "select id, payload from booking_events where booking_id = $1 and type = 'booking.confirmed'",
    )
    .bind(b1)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    let publisher = platform::amqp::ConfirmedPublisher::new(
        &sys.settings.amqp.url,
        "test-redeliver",
        1,
        Duration::from_secs(5),
    );
    for _ in 0..2 {
        publisher
            .publish(
                &sys.settings.topology().events_exchange(),
                "booking.confirmed",
                &serde_json::to_vec(&payload).unwrap(),
                platform::amqp::json_properties(
                    &event_id.to_string(),
                    lapin::types::FieldTable::default(),
                ),
            )
            .await
            .unwrap();
    }
    let b4 = book_paid(&sys, &both, "k4").await;
    sys.eventually(WAIT, "the later booking's sends are recorded", || async {
        sends(&sys, b4).await == sent(&["email", "sms"])
    })
    .await;
    let sms = sys.sms_messages();
    assert_eq!(sms.len(), 2, "one SMS per booking: {sms:?}");
    assert_eq!(sys.emails().len(), 4, "one email per booking");
    sys.shutdown().await;
}

#[tokio::test]
async fn a_failing_provider_is_retried_and_one_that_keeps_failing_dead_letters_the_event() {
    let mut sys = spawn_system(SystemOptions {
        workers: 0,
        ..SystemOptions::default()
    })
    .await;
    // Quick retries, so the delivery limit is spent in seconds.
    sys.settings.notifier.send_attempts_max = 2;
    sys.settings.notifier.requeue_initial_ms = 10;
    sys.settings.notifier.requeue_max_ms = 40;
    let w = sys.start_worker(None, tests::Faults::default()).await;
    sys.workers.push(w);

    // Twice 503, then accepted: one SMS, after two failures.
    sys.sms.fail_next(2, 503);
    let (_, token) = customer_with(&sys, 1, json!(["email", "sms"]), "+919811111111", true).await;
    let b1 = book_paid(&sys, &token, "k1").await;
    sys.eventually(WAIT, "the SMS is sent after the failures", || async {
        sends(&sys, b1).await == sent(&["email", "sms"])
    })
    .await;
    assert_eq!(sys.sms_messages().len(), 1);
    assert_eq!(sys.sms.failed.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(sys.wait_emails(1, WAIT).await.len(), 1);

    // Failing for good: the event ends in notifier.dlq; its email went once.
    sys.sms.fail_next(u32::MAX, 500);
    let (_, token) = customer_with(&sys, 2, json!(["email", "sms"]), "+919822222222", true).await;
    let b2 = book_paid(&sys, &token, "k2").await;
    let topo = sys.settings.topology();
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test-dlq")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    sys.eventually(
        Duration::from_secs(60),
        "the event is dead-lettered",
        || async {
            platform::amqp::queue_counts(&ch, &topo.notifier_dlq())
                .await
                .is_ok_and(|(n, _)| n == 1)
        },
    )
    .await;
    let rows = sends(&sys, b2).await;
    assert_eq!(rows[0], ("email".to_owned(), "sent".to_owned()), "{rows:?}");
    assert_eq!(rows[1].0, "sms", "{rows:?}");
    assert_ne!(rows[1].1, "sent", "{rows:?}");
    assert_eq!(sys.emails().len(), 2, "each confirmation emailed once");
    assert_eq!(sys.sms_messages().len(), 1, "nothing more sent");
    assert!(sys.sms.failed.load(std::sync::atomic::Ordering::SeqCst) > 2);
    sys.shutdown().await;
}
