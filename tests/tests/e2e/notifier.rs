//! The notifier end to end: booking events become emails at the test's own local
//! SMTP sink; the e-ticket in the confirmation email (QR and text) is the one the
//! ticket endpoint serves, and verifies.

use auth::Role;
use base64::Engine;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

const WAIT: Duration = Duration::from_secs(20);

async fn book_paid(sys: &TestSystem, token: &str, key: &str, seats: &[&str]) -> String {
    let show = sys.show(1, 5).await;
    let body = json!({"show_id": show.to_string(), "seats": seats, "payment_method": "pm_card_ok"});
    let (status, accepted) = sys.submit(token, key, body).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    wait_status(sys, token, &id, &["confirmed"]).await;
    id
}

async fn wait_status(sys: &TestSystem, token: &str, id: &str, want: &[&str]) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let (_, b) = sys.booking(token, id).await;
        if want.iter().any(|w| b["status"] == *w) {
            return b;
        }
        last = b;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("booking {id} never reached {want:?}; last seen {last}");
}

async fn get(sys: &TestSystem, token: &str, path: &str) -> (u16, Value) {
    let res = sys
        .http
        .get(sys.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn staff(sys: &TestSystem, role: Role) -> String {
    sys.tokens.mint(contracts::UserId::new_v7(), role).unwrap()
}

async fn verify(sys: &TestSystem, token: &str) -> Value {
    let op = staff(sys, Role::Operator);
    let res = sys
        .http
        // Tokens are base64url and '.': safe in a query string as they are.
        .get(sys.url(&format!("/v1/tickets/verify?token={token}")))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.unwrap()
}

/// The text part and the inline PNG of an email.
fn parts(raw: &[u8]) -> (String, Option<Vec<u8>>, String) {
    let mail = mailparse::parse_mail(raw).unwrap();
    let subject = mailparse::MailHeaderMap::get_first_value(&mail.get_headers(), "Subject")
        .unwrap_or_default();
    let (mut text, mut png) = (String::new(), None);
    let mut stack = vec![&mail];
    while let Some(p) = stack.pop() {
        match p.ctype.mimetype.as_str() {
            "text/plain" => text = p.get_body().unwrap(),
            "image/png" => png = Some(p.get_body_raw().unwrap()),
            _ => stack.extend(p.subparts.iter()),
        }
    }
    (text, png, subject)
}

/// Decodes the QR code in a PNG back to its text.
fn decode_qr(png_bytes: &[u8]) -> String {
    let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

fn ticket_line(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("TICKET: "))
        .unwrap_or_else(|| panic!("no ticket line in {text}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_confirmed_booking_mails_exactly_one_ticket_whose_qr_decodes_to_a_token_that_verifies() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, token) = sys.customer(1).await;
    let id = book_paid(&sys, &token, "k", &["A1", "A2"]).await;
    let mails = sys.wait_emails(1, WAIT).await;
    let (text, png, subject) = parts(&mails[0].raw);
    assert!(subject.contains("confirmed"), "{subject}");
    let png = png.expect("the confirmation has the QR inline");
    let from_qr = decode_qr(&png);
    assert_eq!(from_qr, ticket_line(&text), "QR and text carry one token");

    // The ticket endpoint serves the same token and the same PNG.
    let (status, t) = get(&sys, &token, &format!("/v1/bookings/{id}/ticket")).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token"], from_qr.as_str());
    let served = base64::engine::general_purpose::STANDARD
        .decode(t["qr_png_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(served, png);
    let res = sys
        .http
        .get(sys.url(&format!("/v1/bookings/{id}/ticket")))
        .bearer_auth(&token)
        .header("accept", "image/png")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().to_vec(), png);
    // Someone else's booking has no ticket for them.
    let (_, stranger) = sys.customer(2).await;
    let (status, _) = get(&sys, &stranger, &format!("/v1/bookings/{id}/ticket")).await;
    assert_eq!(status, 404);

    let v = verify(&sys, &from_qr).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["booking_id"], id.as_str());
    assert_eq!(v["seats"], json!(["A1", "A2"]));
    // Verification is for staff; the public keys are for everyone.
    let res = sys
        .http
        .get(sys.url(&format!("/v1/tickets/verify?token={from_qr}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let keys: Value = sys
        .http
        .get(sys.url("/v1/tickets/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["alg"], "Ed25519", "{keys}");

    // Exactly one email, and its send is recorded once.
    sys.holds_for(Duration::from_secs(1), "one email", || async {
        sys.emails().len() == 1
    })
    .await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("select template, status from sent_messages where booking_id = $1")
            .bind(id.parse::<uuid::Uuid>().unwrap())
            .fetch_all(&sys.pool)
            .await
            .unwrap();
    assert_eq!(rows, [("confirmed".to_owned(), "sent".to_owned())]);
    sys.shutdown().await;
}

/// The `booking.confirmed` event of booking `id`: its id and envelope.
async fn confirmed_event(sys: &TestSystem, id: &str) -> (uuid::Uuid, Value) {
    sqlx::query_as(
        "select id, payload from booking_events where booking_id = $1 and type = 'booking.confirmed'",
    )
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .fetch_one(&sys.pool)
    .await
    .unwrap()
}

/// Publishes the event `copies` times more, as the broker would redeliver it.
async fn redeliver(sys: &TestSystem, event_id: uuid::Uuid, payload: &Value, copies: usize) {
    let topo = sys.settings.topology();
    let publisher = platform::amqp::ConfirmedPublisher::new(
        &sys.settings.amqp.url,
        "test-redeliver",
        1,
        Duration::from_secs(5),
    );
    for _ in 0..copies {
        publisher
            .publish(
                &topo.events_exchange(),
                "booking.confirmed",
                &serde_json::to_vec(payload).unwrap(),
                platform::amqp::json_properties(
                    &event_id.to_string(),
                    lapin::types::FieldTable::default(),
                ),
            )
            .await
            .unwrap();
    }
}

/// The status and attempts of the event's `sent_messages` row.
async fn send_row(sys: &TestSystem, event_id: uuid::Uuid) -> Option<(String, i32)> {
    sqlx::query_as("select status, attempts from sent_messages where event_id = $1")
        .bind(event_id)
        .fetch_optional(&sys.pool)
        .await
        .unwrap()
}

fn message_id(raw: &[u8]) -> String {
    let mail = mailparse::parse_mail(raw).unwrap();
    mailparse::MailHeaderMap::get_first_value(&mail.get_headers(), "Message-ID")
        .expect("a Message-ID")
}

#[tokio::test]
async fn a_send_whose_record_fails_for_a_while_is_recorded_and_sent_once() {
    let sys = spawn_system(SystemOptions::default()).await;
    // PostgreSQL "down" for the first few attempts to record the send.
    sys.workers[0]
        .arm(tests::Faults {
            notifier_fail_record: 4,
            ..Default::default()
        })
        .await;
    let (_, token) = sys.customer(1).await;
    let id = book_paid(&sys, &token, "k", &["A1"]).await;
    sys.wait_emails(1, WAIT).await;
    let (event_id, _) = confirmed_event(&sys, &id).await;
    // Recorded within seconds, not after the claim's lease (minutes) ran out.
    sys.eventually(WAIT, "the send is recorded", || async {
        send_row(&sys, event_id)
            .await
            .is_some_and(|(s, _)| s == "sent")
    })
    .await;
    assert_eq!(send_row(&sys, event_id).await, Some(("sent".into(), 1)));
    sys.holds_for(Duration::from_secs(2), "one email only", || async {
        sys.emails().len() == 1
    })
    .await;
    let workers = sys.workers[0].metrics_addr.expect("workers metrics");
    let metrics = sys
        .http
        .get(format!("http://{workers}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("notifier_record_retries_total"),
        "{metrics}"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn a_send_repeated_after_a_lost_record_carries_the_same_message_id() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, token) = sys.customer(1).await;
    let id = book_paid(&sys, &token, "k", &["A2"]).await;
    let first = sys.wait_emails(1, WAIT).await;
    let (event_id, payload) = confirmed_event(&sys, &id).await;
    sys.eventually(WAIT, "the send is recorded", || async {
        send_row(&sys, event_id)
            .await
            .is_some_and(|(s, _)| s == "sent")
    })
    .await;
    // What a crash between the send and its record leaves: a claim whose lease ran
    // out. The redelivered event is sent again (at least once), with the same id.
    sqlx::query(
        "update sent_messages set status = 'sending', sent_at = null,
                lease_until = now() - interval '1 second' where event_id = $1",
    )
    .bind(event_id)
    .execute(&sys.pool)
    .await
    .unwrap();
    redeliver(&sys, event_id, &payload, 1).await;
    let both = sys.wait_emails(2, WAIT).await;
    let expected = format!("<{event_id}@notifier.booking.local>");
    assert_eq!(message_id(&first[0].raw), expected);
    for mail in &both {
        assert_eq!(message_id(&mail.raw), expected);
    }
    sys.shutdown().await;
}

/// Messages in the notifier's dead-letter queue.
async fn notifier_dead_letters(sys: &TestSystem) -> u32 {
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test-dlq")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let (n, _) = platform::amqp::queue_counts(&ch, &sys.settings.topology().notifier_dlq())
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn an_event_whose_sender_died_mid_send_is_sent_after_its_lease_not_dead_lettered() {
    // A quick requeue backoff, so that retrying on it spends the queue's delivery
    // limit (10) in well under a second, long before the dead sender's lease ends.
    let mut sys = spawn_system(SystemOptions {
        workers: 0,
        ..SystemOptions::default()
    })
    .await;
    sys.settings.notifier.requeue_initial_ms = 10;
    sys.settings.notifier.requeue_max_ms = 40;
    let w = sys.start_worker(None, tests::Faults::default()).await;
    sys.workers.push(w);
    let (_, token) = sys.customer(1).await;
    let id = book_paid(&sys, &token, "k", &["A3"]).await;
    let first = sys.wait_emails(1, WAIT).await;
    let (event_id, payload) = confirmed_event(&sys, &id).await;
    sys.eventually(WAIT, "the send is recorded", || async {
        send_row(&sys, event_id)
            .await
            .is_some_and(|(s, _)| s == "sent")
    })
    .await;
    // What a workers process killed in the middle of a send leaves: the event
    // claimed, its lease still running for a few seconds, and the event redelivered
    // to another consumer at once.
    sqlx::query(
        "update sent_messages set status = 'sending', sent_at = null,
                lease_until = now() + interval '3 seconds' where event_id = $1",
    )
    .bind(event_id)
    .execute(&sys.pool)
    .await
    .unwrap();
    redeliver(&sys, event_id, &payload, 1).await;
    // Sent once the lease is over (at least once: the dead sender may have sent it).
    let both = sys.wait_emails(2, WAIT).await;
    let expected = format!("<{event_id}@notifier.booking.local>");
    assert_eq!(message_id(&first[0].raw), expected);
    assert!(both.iter().all(|m| message_id(&m.raw) == expected));
    sys.eventually(WAIT, "the resend is recorded", || async {
        send_row(&sys, event_id).await == Some(("sent".into(), 2))
    })
    .await;
    assert_eq!(
        notifier_dead_letters(&sys).await,
        0,
        "nothing dead-lettered"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn redelivering_the_confirmed_event_sends_nothing_more() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, token) = sys.customer(1).await;
    let id = book_paid(&sys, &token, "k", &["A3"]).await;
    sys.wait_emails(1, WAIT).await;
    let (event_id, payload) = confirmed_event(&sys, &id).await;
    redeliver(&sys, event_id, &payload, 2).await;
    let topo = sys.settings.topology();
    // Both copies are consumed (the queue drains), and nothing more is sent.
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test-depth")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    sys.eventually(WAIT, "the notifier queue drains", || async {
        platform::amqp::queue_counts(&ch, &topo.notifier_queue())
            .await
            .is_ok_and(|(n, _)| n == 0)
    })
    .await;
    sys.holds_for(
        Duration::from_millis(1500),
        "a redelivered event sends no other email",
        || async { sys.emails().len() == 1 },
    )
    .await;
    let (status, attempts): (String, i32) =
        sqlx::query_as("select status, attempts from sent_messages where event_id = $1")
            .bind(event_id)
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("sent", 1));
    sys.shutdown().await;
}

#[tokio::test]
async fn a_tampered_ticket_fails_verification() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, token) = sys.customer(1).await;
    let id = book_paid(&sys, &token, "k", &["A1"]).await;
    let (status, t) = get(&sys, &token, &format!("/v1/bookings/{id}/ticket")).await;
    assert_eq!(status, 200, "{t}");
    let good = t["token"].as_str().unwrap();
    assert_eq!(verify(&sys, good).await["valid"], true);
    // Claim another seat, keep the signature.
    let (payload, sig) = good.split_once('.').unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
    claims["seats"] = json!(["A1", "A2"]);
    let forged = format!("{}.{sig}", b64.encode(serde_json::to_vec(&claims).unwrap()));
    let v = verify(&sys, &forged).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["reason"], "bad_signature");
    let v = verify(&sys, "not-a-ticket").await;
    assert_eq!(
        (v["valid"].clone(), v["reason"].clone()),
        (json!(false), json!("malformed"))
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_bookings_ticket_is_signed_but_not_valid() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, token) = sys.customer(1).await;
    let id = book_paid(&sys, &token, "k", &["A4"]).await;
    let (_, t) = get(&sys, &token, &format!("/v1/bookings/{id}/ticket")).await;
    let ticket = t["token"].as_str().unwrap().to_owned();
    let (status, _) = sys
        .post(&token, &format!("/v1/bookings/{id}/cancel"), None)
        .await;
    assert_eq!(status, 202);
    wait_status(&sys, &token, &id, &["refunded"]).await;
    let v = verify(&sys, &ticket).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(
        v["booking_id"],
        id.as_str(),
        "the signature still checks: {v}"
    );
    assert!(
        v["reason"] == "booking_cancelled" || v["reason"] == "booking_refunded",
        "{v}"
    );
    let (status, _) = get(&sys, &token, &format!("/v1/bookings/{id}/ticket")).await;
    assert_eq!(status, 409);
    // Confirmed, cancelled and refunded: one email each.
    let mails = sys.wait_emails(3, WAIT).await;
    let mut subjects: Vec<String> = mails.iter().map(|m| parts(&m.raw).2).collect();
    subjects.sort();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    sys.shutdown().await;
}

#[tokio::test]
async fn an_smtp_server_that_refuses_then_accepts_delivers_one_email() {
    let sys = spawn_system(SystemOptions {
        smtp_refuse_first: 2,
        ..SystemOptions::default()
    })
    .await;
    let (_, token) = sys.customer(1).await;
    book_paid(&sys, &token, "k", &["A5"]).await;
    let mails = sys.wait_emails(1, WAIT).await;
    assert!(parts(&mails[0].raw).1.is_some());
    sys.holds_for(Duration::from_secs(1), "one email", || async {
        sys.emails().len() == 1
    })
    .await;
    assert_eq!(
        sys.smtp.refused.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the sink refused twice before accepting"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn a_permanently_rejected_address_reaches_the_dead_letter_queue() {
    let sys = spawn_system(SystemOptions {
        smtp_reject_pattern: Some("reject".into()),
        ..SystemOptions::default()
    })
    .await;
    let (user, token) = sys.customer(1).await;
    sqlx::query("update users set email = 'reject-' || email where id = $1")
        .bind(user.0)
        .execute(&sys.pool)
        .await
        .unwrap();
    let id = book_paid(&sys, &token, "k", &["A2"]).await;
    let topo = sys.settings.topology();
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test-dlq")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    sys.eventually(WAIT, "the rejected email is dead-lettered", || async {
        platform::amqp::queue_counts(&ch, &topo.notifier_dlq())
            .await
            .is_ok_and(|(n, _)| n == 1)
    })
    .await;
    let op = staff(&sys, Role::Operator);
    let (status, body) = get(
        &sys,
        &op,
        &format!("/v1/ops/dlq/{}/messages?limit=5", topo.notifier_dlq()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let m = &body["items"][0];
    assert!(
        m["reason"].as_str().unwrap_or("").contains("550"),
        "the reason names the refusal: {m}"
    );
    assert_eq!(m["body"]["booking_id"], id.as_str(), "{m}");
    let status: String = sqlx::query_scalar(
        "select status from sent_messages where booking_id = $1 and template = 'confirmed'",
    )
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(status, "failed");
    assert!(sys.emails().is_empty());
    assert_eq!(
        sys.smtp.rejected.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    sys.shutdown().await;
}
