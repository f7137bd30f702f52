//! The buyer's emails of the Round 2 journey: a booking that failed after a decline
//! says so, a hold that ran out unpaid says so, and a show the theater cancelled
//! says who cancelled it and that the refund is in full; each exactly once.

use crate::journey::{book, declined, wait_for};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

/// (subject, text part) of every email whose text names booking `id`.
pub(crate) fn emails_of(sys: &TestSystem, id: &str) -> Vec<(String, String)> {
    sys.emails()
        .iter()
        .filter_map(|m| {
            let mail = mailparse::parse_mail(&m.raw).ok()?;
            let subject = mailparse::MailHeaderMap::get_first_value(&mail.get_headers(), "Subject")
                .unwrap_or_default();
            let mut stack = vec![&mail];
            let mut text = String::new();
            while let Some(p) = stack.pop() {
                if p.ctype.mimetype == "text/plain" {
                    text = p.get_body().unwrap_or_default();
                } else {
                    stack.extend(p.subparts.iter());
                }
            }
            text.contains(id).then_some((subject, text))
        })
        .collect()
}

/// Waits until booking `id` has `n` emails, checks that no more arrive for a while
/// (a duplicate would), and returns them.
async fn wait_emails_of(sys: &TestSystem, id: &str, n: usize) -> Vec<(String, String)> {
    sys.eventually(Duration::from_secs(30), "the booking's emails", || async {
        emails_of(sys, id).len() >= n
    })
    .await;
    sys.holds_for(
        Duration::from_millis(1500),
        "no duplicate e-mail",
        || async { emails_of(sys, id).len() == n },
    )
    .await;
    emails_of(sys, id)
}

#[tokio::test]
async fn a_failed_payment_and_an_unpaid_hold_are_each_told_once() {
    let sys = spawn_system(SystemOptions {
        hold_ttl_secs: 2,
        expiry_sweep_ms: 100,
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(1, 3).await;
    let (_, token) = sys.customer(1).await;
    let failed = book(&sys, &token, "f", show, &["A1"], Some("pm_card_declined")).await;
    wait_for(&sys, &token, &failed, "a decline", declined).await;
    let unpaid = book(&sys, &token, "u", show, &["A2"], None).await;
    wait_for(&sys, &token, &failed, "failed", |b| b["status"] == "failed").await;
    wait_for(&sys, &token, &unpaid, "expired", |b| {
        b["status"] == "expired"
    })
    .await;

    // No email for the decline itself (the buyer is at the checkout), one for
    // the failure after the hold ran out.
    let mails = wait_emails_of(&sys, &failed, 1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (subject, text) = &mails[0];
    assert_eq!(subject, "Your payment did not go through");
    assert!(text.contains("card_declined"), "{text}");
    assert!(text.contains("before your hold ran out"), "{text}");
    assert!(text.contains("booking failed"), "{text}");
    assert!(text.contains("not been charged"), "{text}");

    let mails = wait_emails_of(&sys, &unpaid, 1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (subject, text) = &mails[0];
    assert_eq!(subject, "Your seat hold ran out");
    assert!(
        text.contains("A2") && text.contains("not been charged"),
        "{text}"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn a_show_cancelled_by_the_theater_says_so_and_that_the_refund_is_in_full() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(1, 4).await;
    let (_, token) = sys.customer(1).await;
    let paid = book(&sys, &token, "p", show, &["A1"], Some("pm_card_ok")).await;
    let held = book(&sys, &token, "h", show, &["A3"], None).await;
    wait_for(&sys, &token, &paid, "confirmed", |b| {
        b["status"] == "confirmed"
    })
    .await;
    wait_for(&sys, &token, &held, "held", |b| b["status"] == "held").await;
    let (_, admin) = sys.user_with_role(auth::Role::Admin).await;
    let (status, body) = sys
        .post(&admin, &format!("/v1/admin/shows/{show}/cancel"), None)
        .await;
    assert_eq!(status, 202, "{body}");
    wait_for(&sys, &token, &paid, "refunded", |b| {
        b["status"] == "refunded"
    })
    .await;

    // The paid booking: confirmation, the theater's cancellation, the refund.
    let mails = wait_emails_of(&sys, &paid, 3).await;
    let cancelled: Vec<_> = mails
        .iter()
        .filter(|(s, _)| s == "The show is cancelled by the theater")
        .collect();
    assert_eq!(cancelled.len(), 1, "{mails:?}");
    let text = &cancelled[0].1;
    assert!(
        text.contains("The theater has cancelled this show"),
        "{text}"
    );
    assert!(text.contains("full refund of INR 250.00"), "{text}");
    assert_eq!(mails.len(), 3, "{mails:?}");
    // The held booking: told too, and that nothing was charged.
    let mails = wait_emails_of(&sys, &held, 1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (subject, text) = &mails[0];
    assert_eq!(subject, "The show is cancelled by the theater");
    assert!(
        text.contains("A3") && text.contains("not been charged"),
        "{text}"
    );
    sys.shutdown().await;
}
