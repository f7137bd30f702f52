//! Reminders before a show (issue 14, "SMS"): when a show's reminder time comes,
//! each booking confirmed by then is reminded once on each channel its buyer's
//! `preferences.notify` asks for (SMS only to a verified phone), with two workers
//! processes sweeping at once; a booking cancelled before then, a show the theater
//! cancelled and a booking confirmed after the reminder time are not; neither a
//! restart nor a sweep that forgot it had run sends anything twice.

use crate::journey_mail::emails_of;
use crate::payments::{book_and_wait, wait_status};
use crate::sms::{customer_with, sends_of, sent};
use contracts::{BookingId, EventEnvelope, Reminder, ShowId, UserId};
use serde_json::json;
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};
use time::OffsetDateTime;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);
const SUBJECT: &str = "Your show is coming up";

/// The (channel, status) rows of booking `id`'s reminder, by channel.
async fn reminder_sends(sys: &TestSystem, id: &str) -> Vec<(String, String)> {
    sends_of(sys, id.parse().unwrap(), "reminder").await
}

/// The reminder emails the sink holds for booking `id` (their text parts).
fn reminder_emails(sys: &TestSystem, id: &str) -> Vec<String> {
    emails_of(sys, id)
        .into_iter()
        .filter(|(subject, _)| subject == SUBJECT)
        .map(|(_, text)| text)
        .collect()
}

/// The reminder SMS the provider took.
fn reminder_sms(sys: &TestSystem) -> Vec<smtp_sink::sms::SmsMessage> {
    sys.sms_messages()
        .into_iter()
        .filter(|m| m.body.starts_with("Reminder"))
        .collect()
}

/// The claim the sweep left for `show`: how many bookings it wrote reminders for.
async fn claimed(sys: &TestSystem, show: ShowId) -> Option<i32> {
    sqlx::query_scalar("select bookings from show_reminders where show_id = $1")
        .bind(show.0)
        .fetch_optional(&sys.pool)
        .await
        .unwrap()
}

/// Reminder sweeps the `i`-th workers process has made.
async fn sweeps(sys: &TestSystem, i: usize) -> f64 {
    sys.workers[i].counter("reminder_sweeps_total").await
}

#[tokio::test]
async fn a_booking_confirmed_at_its_shows_reminder_time_is_reminded_once_per_channel_it_asked_for()
{
    // Reminders off while the bookings are made (the harness's default); then two
    // processes that remind exactly from now on.
    let mut sys = spawn_system(SystemOptions::default()).await;
    let starts_at = OffsetDateTime::now_utc() + time::Duration::hours(2);
    let show = sys
        .show_starting_at(ShowId::new_v7(), 1, 8, starts_at)
        .await;
    let off = sys
        .show_starting_at(ShowId::new_v7(), 1, 2, starts_at)
        .await;
    let (_, email) = sys.customer(1).await;
    let (_, sms) = customer_with(&sys, 2, json!(["sms"]), "+919800000002", true).await;
    let (_, both) = customer_with(&sys, 3, json!(["email", "sms"]), "+919800000003", true).await;
    // SMS wanted, phone not verified: email instead, as for every booking message.
    let (_, unverified) = customer_with(&sys, 4, json!(["sms"]), "+919800000004", false).await;
    let (_, canceller) =
        customer_with(&sys, 5, json!(["email", "sms"]), "+919800000005", true).await;
    let (_, other) = customer_with(&sys, 6, json!(["email", "sms"]), "+919800000006", true).await;
    let mut ids = vec![];
    for (n, token, seat) in [
        (1, &email, "A1"),
        (2, &sms, "A2"),
        (3, &both, "A3"),
        (4, &unverified, "A4"),
        (5, &canceller, "A5"),
    ] {
        let b = book_and_wait(
            &sys,
            token,
            &format!("k{n}"),
            show,
            &[seat],
            Some("pm_card_ok"),
            &["confirmed"],
        )
        .await;
        ids.push(b["booking_id"].as_str().unwrap().to_owned());
    }
    let on_off = book_and_wait(
        &sys,
        &other,
        "k6",
        off,
        &["A1"],
        Some("pm_card_ok"),
        &["confirmed"],
    )
    .await["booking_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The buyer cancels one booking, the theater the other show.
    let (status, body) = sys
        .post(&canceller, &format!("/v1/bookings/{}/cancel", ids[4]), None)
        .await;
    assert_eq!(status, 202, "{body}");
    wait_status(&sys, &canceller, &ids[4], &["cancelled", "refunded"]).await;
    let (_, admin) = sys.user_with_role(auth::Role::Admin).await;
    let (status, body) = sys
        .post(&admin, &format!("/v1/admin/shows/{off}/cancel"), None)
        .await;
    assert_eq!(status, 202, "{body}");
    wait_status(&sys, &other, &on_off, &["cancelled", "refunded"]).await;

    // The reminder time is now: every booking above was confirmed (or cancelled)
    // at or before `starts_at - before`.
    let last: OffsetDateTime =
        sqlx::query_scalar("select max(updated_at) from bookings where show_id = any($1)")
            .bind(vec![show.0, off.0])
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    let before = u64::try_from((starts_at - last).whole_seconds()).unwrap();
    sys.workers.pop().unwrap().stop().await;
    sys.settings.notifier.reminder_before_secs = before;
    for _ in 0..2 {
        let w = sys.start_worker(None, tests::Faults::default()).await;
        sys.workers.push(w);
    }

    let want = [
        sent(&["email"]),
        sent(&["sms"]),
        sent(&["email", "sms"]),
        sent(&["email"]),
    ];
    for (id, want) in ids.iter().zip(&want) {
        sys.eventually(WAIT, "the booking's reminders are recorded", || async {
            reminder_sends(&sys, id).await == *want
        })
        .await;
    }
    // One claim of the show, by one of the two processes, for the four bookings
    // confirmed; none for the cancelled show.
    assert_eq!(claimed(&sys, show).await, Some(4));
    let queued = sys.workers[0].counter("reminders_queued_total").await
        + sys.workers[1].counter("reminders_queued_total").await;
    assert_eq!(queued, 4.0, "one process wrote the show's reminders");
    assert_eq!(claimed(&sys, off).await, None);
    assert_eq!(reminder_sends(&sys, &ids[4]).await, vec![]);
    assert_eq!(reminder_sends(&sys, &on_off).await, vec![]);
    let counts = |sys: &TestSystem| {
        let emails: usize = ids
            .iter()
            .chain([&on_off])
            .map(|id| reminder_emails(sys, id).len())
            .sum();
        (emails, reminder_sms(sys).len())
    };
    sys.holds_for(
        Duration::from_millis(1500),
        "one reminder per booking and channel",
        || async { counts(&sys) == (3, 2) },
    )
    .await;

    // What they say: the show on the theater's clock, where, and the seats.
    let local = platform::localtime::local_human(starts_at, "Asia/Kolkata");
    let text = &reminder_emails(&sys, &ids[2])[0];
    for part in [local.as_str(), "Test Theater", "A3"] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
    let texts = reminder_sms(&sys);
    let to_sms = texts.iter().find(|m| m.to == "+919800000002").unwrap();
    for part in [local.as_str(), "Test Theater", "Seats A2"] {
        assert!(
            to_sms.body.contains(part),
            "{part:?} missing from {to_sms:?}"
        );
    }
    assert!(texts.iter().any(|m| m.to == "+919800000003"), "{texts:?}");

    // A crash and a restart: the new process sweeps and finds the show reminded.
    sys.workers.pop().unwrap().kill().await;
    sys.workers.pop().unwrap().stop().await;
    let w = sys.start_worker(None, tests::Faults::default()).await;
    sys.workers.push(w);
    sys.eventually(WAIT, "the new process sweeps twice", || async {
        sweeps(&sys, 0).await >= 2.0
    })
    .await;
    assert_eq!(claimed(&sys, show).await, Some(4));
    assert_eq!(counts(&sys), (3, 2));

    // A sweep that forgot it had run writes the same reminders again: the notifier
    // finds each (event, channel) sent and sends nothing.
    sqlx::query("delete from show_reminders where show_id = $1")
        .bind(show.0)
        .execute(&sys.pool)
        .await
        .unwrap();
    sys.eventually(WAIT, "the five sends are found done", || async {
        sys.workers[0]
            .counter(r#"notifier_sends_total{template="reminder",outcome="duplicate"}"#)
            .await
            + sys.workers[0]
                .counter(r#"notifier_sms_sends_total{template="reminder",outcome="duplicate"}"#)
                .await
            >= 5.0
    })
    .await;
    assert_eq!(claimed(&sys, show).await, Some(4));
    assert_eq!(counts(&sys), (3, 2));
    for (id, want) in ids.iter().zip(&want) {
        assert_eq!(reminder_sends(&sys, id).await, *want);
    }

    // What changed while a reminder waited in the queue: the notifier checks again.
    // The cancelled booking's, and one made for a start the show no longer has.
    let late = |id: &str, starts_at: OffsetDateTime| {
        EventEnvelope::reminder(
            Reminder {
                show_id: show,
                booking_id: BookingId(id.parse().unwrap()),
                user_id: UserId(Uuid::now_v7()),
                seats: vec![],
                zones: vec![],
                starts_at: platform::millis_of(starts_at),
            },
            platform::now_millis(),
        )
    };
    publish(
        &sys,
        &[
            late(&ids[4], starts_at),
            late(&ids[0], starts_at + time::Duration::hours(1)),
        ],
    )
    .await;
    sys.eventually(WAIT, "both reminders are dropped", || async {
        sys.workers[0]
            .counter("notifier_reminders_dropped_total")
            .await
            >= 2.0
    })
    .await;
    assert_eq!(reminder_sends(&sys, &ids[4]).await, vec![]);
    assert_eq!(reminder_sends(&sys, &ids[0]).await, sent(&["email"]));
    assert_eq!(counts(&sys), (3, 2));
    sys.shutdown().await;
}

/// Publishes `events` to the events exchange, as the outbox would.
async fn publish(sys: &TestSystem, events: &[EventEnvelope]) {
    let publisher = platform::amqp::ConfirmedPublisher::new(
        &sys.settings.amqp.url,
        "test-reminders",
        1,
        Duration::from_secs(5),
    );
    for e in events {
        publisher
            .publish(
                &sys.settings.topology().events_exchange(),
                e.event.routing_key(),
                &serde_json::to_vec(e).unwrap(),
                platform::amqp::json_properties(
                    &e.event_id.to_string(),
                    lapin::types::FieldTable::default(),
                ),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_booking_confirmed_after_its_shows_reminder_time_gets_no_reminder() {
    // Booked and confirmed while no process reminds; then one whose reminder time
    // for the show is a minute before that confirmation.
    let mut sys = spawn_system(SystemOptions::default()).await;
    let starts_at = OffsetDateTime::now_utc() + time::Duration::hours(2);
    let show = sys
        .show_starting_at(ShowId::new_v7(), 1, 2, starts_at)
        .await;
    let (_, token) = customer_with(&sys, 1, json!(["email", "sms"]), "+919800000001", true).await;
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
    let id = b["booking_id"].as_str().unwrap();
    // Its confirmation is what tells the buyer when the show is.
    sys.eventually(WAIT, "the confirmation is sent", || async {
        emails_of(&sys, id).len() == 1 && sys.sms_messages().len() == 1
    })
    .await;
    let confirmed: OffsetDateTime =
        sqlx::query_scalar("select updated_at from bookings where id = $1")
            .bind(id.parse::<Uuid>().unwrap())
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    let before = u64::try_from((starts_at - confirmed).whole_seconds() + 60).unwrap();
    sys.workers.pop().unwrap().stop().await;
    sys.settings.notifier.reminder_before_secs = before;
    let w = sys.start_worker(None, tests::Faults::default()).await;
    sys.workers.push(w);

    // The show is claimed, for no booking: nothing to send, ever.
    let reminded = sys
        .until_some(WAIT, "the show's claim", || async {
            claimed(&sys, show).await
        })
        .await;
    assert_eq!(reminded, 0);
    assert_eq!(sys.workers[0].counter("reminders_queued_total").await, 0.0);
    assert_eq!(reminder_sends(&sys, id).await, vec![]);
    assert!(reminder_emails(&sys, id).is_empty());
    assert!(reminder_sms(&sys).is_empty());
    sys.shutdown().await;
}
