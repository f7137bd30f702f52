//! The operator console: an operator signs in on `/ops`, sees the dead letters,
//! dry-runs a replay (the sequencer's simulation; nothing moves), confirms it in a
//! dialog and the sequencer applies the message, then purges the poison message;
//! axe-core finds nothing serious on the page.

use crate::access::assert_accessible;
use crate::driver::Chromedriver;
use crate::new_email;
use contracts::{
    BookingId, Command, CommandEnvelope, HoldSeats, MessageId, SeatId, SeatRequest, ShowId, UserId,
};
use lapin::types::FieldTable;
use serde_json::json;
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

/// Longest wait for the broker or the sequencer in these tests.
const BROKER_WAIT: Duration = Duration::from_secs(30);

/// Publishes one message to the commands exchange with a publisher confirm.
async fn publish(sys: &TestSystem, key: &str, body: &[u8], id: &str) {
    let exchange = sys.settings.topology().commands_exchange();
    sys.publish_raw(exchange.as_str(), key, body, id, FieldTable::default())
        .await;
}

async fn dlq_depth(sys: &TestSystem) -> u32 {
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let (n, _) = platform::amqp::queue_counts(&ch, &sys.settings.topology().commands_dlq())
        .await
        .unwrap();
    drop(conn.close(200, "done".into()).await);
    n
}

/// Waits until the commands dead-letter queue holds exactly `n` ready messages (a
/// read puts its messages back asynchronously).
async fn wait_dlq(sys: &TestSystem, n: u32) {
    sys.eventually(BROKER_WAIT, &format!("the DLQ holds {n}"), || async {
        dlq_depth(sys).await == n
    })
    .await;
}

async fn booking_status(sys: &TestSystem, booking: BookingId) -> Option<String> {
    sqlx::query_scalar("select status from bookings where id = $1")
        .bind(booking.0)
        .fetch_optional(&sys.pool)
        .await
        .unwrap()
}

/// An account of `role` with a password, made through the public API and promoted.
pub async fn staff_account(sys: &TestSystem, role: &str) -> (String, String) {
    let email = new_email(role);
    let password = "correct horse battery".to_owned();
    let res = sys
        .http
        .post(sys.url("/v1/auth/register"))
        .json(&json!({"name": "Olga Operator", "email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    sqlx::query("update users set role = $2 where email = $1")
        .bind(&email)
        .bind(role)
        .execute(&sys.pool)
        .await
        .unwrap();
    (email, password)
}

#[tokio::test]
async fn an_operator_sees_a_poison_message_dry_runs_and_replays_it() {
    let sys = spawn_system(SystemOptions::default()).await;
    let topo = sys.settings.topology();
    let dlq = topo.commands_dlq();

    // A body that is no command at all, and a valid hold for a show that does not
    // exist yet: the runner dead-letters both.
    publish(
        &sys,
        &topo.partition_key(0),
        b"{\"this is\": \"not a command\"}",
        "poison-web",
    )
    .await;
    let show = ShowId::new_v7();
    let booking = BookingId::new_v7();
    let hold = CommandEnvelope {
        message_id: MessageId::new_v7(),
        show_id: show,
        issued_at: platform::now_millis(),
        request_id: Some("web-ops-test".into()),
        trace: None,
        command: Command::HoldSeats(HoldSeats {
            booking_id: booking,
            user_id: UserId::new_v7(),
            request: SeatRequest::Chosen {
                seats: vec![SeatId::try_from("A1".to_owned()).unwrap()],
            },
            hold_ttl_ms: 480_000,
            payment_method: None,
        }),
    };
    let hold_id = hold.message_id.to_string();
    publish(
        &sys,
        &topo.partition_key(topo.partition_of(show)),
        &serde_json::to_vec(&hold).unwrap(),
        &hold_id,
    )
    .await;
    wait_dlq(&sys, 2).await;
    // The show is fixed (created) afterwards, so the hold can now be applied.
    sys.show_with_id(show, 2, 4).await;
    let (email, password) = staff_account(&sys, "operator").await;

    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 1000).await;
    b.goto("/ops").await;
    b.fill("#acc-email", &email).await;
    b.fill("#acc-password", &password).await;
    b.click("form.auth button[type=submit]").await;
    b.text_contains("#dlq-total", "2 dead-lettered messages")
        .await;
    b.text_contains("#reconcile-verdict", "agree").await;
    b.click(&format!("tr[data-queue='{dlq}'] button")).await;
    let poison = b
        .text_contains("li[data-id='poison-web']", "unparseable command")
        .await;
    assert!(
        poison.contains(&topo.partition_queue(0)),
        "the source queue is shown: {poison}"
    );
    b.text_contains(
        &format!("li[data-id='{hold_id}'] .reason"),
        &format!("show {show} cannot be loaded"),
    )
    .await;
    b.screenshot("ops").await;
    assert_accessible(&b, "ops").await;

    // The dry run of both: the hold would move back to its partition queue, the
    // poison message would stay; nothing has moved.
    b.click("#dry-run-all").await;
    let diff = b
        .text_contains("#replay-preview", "nothing has moved")
        .await;
    assert!(
        diff.contains(&format!(
            "+ {}: {hold_id}",
            topo.partition_queue(topo.partition_of(show))
        )),
        "{diff}"
    );
    // The sequencer's own dry run says what the hold would do.
    assert!(
        diff.contains(&format!("booking {booking} held A1")),
        "{diff}"
    );
    assert!(diff.contains("poison-web stays"), "{diff}");
    assert!(diff.contains("Replay 1"), "{diff}");
    wait_dlq(&sys, 2).await;
    assert_eq!(
        booking_status(&sys, booking).await,
        None,
        "a dry run applies nothing"
    );

    // The confirmation dialog, then the real replay.
    b.click("#replay-open").await;
    b.find("dialog[open] #replay-go").await;
    assert_accessible(&b, "ops: replay confirmation").await;
    b.click("#replay-go").await;
    let said = b.text_contains("#replay-outcome", "Replayed 1.").await;
    assert!(said.contains("Skipped poison-web"), "{said}");
    sys.wait_decided(&[booking.0], BROKER_WAIT).await;
    assert_eq!(booking_status(&sys, booking).await.as_deref(), Some("held"));
    wait_dlq(&sys, 1).await;
    b.click("#ops-refresh").await;
    b.text_contains("#dlq-total", "1 dead-lettered message waiting")
        .await;

    // The poison message is purged for good, after a confirmation (the refresh
    // above redraws the queue's messages too).
    b.click("li[data-id='poison-web'] button.purge").await;
    b.find("dialog[open] #purge-go").await;
    b.click("#purge-go").await;
    b.text_contains("#replay-outcome", "Purged 1.").await;
    wait_dlq(&sys, 0).await;
    b.close().await;
    sys.shutdown().await;
}
