//! Refunds and their webhooks.

use super::*;

#[tokio::test]
async fn a_succeeded_payment_is_refunded_with_a_refund_succeeded_webhook() {
    let system = spawn_system(Options::default()).await;
    let req = payment("pm_card_ok");
    let intent = system
        .client
        .create_payment(&req, "refund-1")
        .await
        .unwrap();
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;

    let refund = system
        .client
        .refund(&intent.id, 10_000, "refund-1-r")
        .await
        .unwrap();

    assert!(refund.id.starts_with("re_"));
    assert_eq!(refund.object, "refund");
    assert_eq!(refund.status, RefundStatus::Pending);
    assert_eq!(
        (refund.payment_intent.as_str(), refund.amount),
        (intent.id.as_str(), 10_000)
    );
    let events = webhooks_arrive(&system, req.booking_id, 2).await;
    let refunded = events
        .iter()
        .find(|e| e.kind == event_type::REFUND_SUCCEEDED)
        .expect("a refund.succeeded webhook");
    assert_eq!(refunded.data.refund_id.as_deref(), Some(refund.id.as_str()));
    assert_eq!(refunded.data.payment_id, intent.id);
    assert_eq!(refunded.data.amount, 10_000);
    assert_eq!(
        get_refund(&system, &refund.id).await.status,
        RefundStatus::Succeeded
    );
    // The client asks for it too (the saga's check of a refund webhook).
    let fetched = system.client.get_refund(&refund.id).await.unwrap();
    assert_eq!(
        (fetched.status, fetched.currency.as_str()),
        (RefundStatus::Succeeded, "INR")
    );
    let after = system.client.get_payment(&intent.id).await.unwrap();
    assert_eq!(after.amount_refunded, 10_000);
    let replay = system
        .client
        .refund(&intent.id, 10_000, "refund-1-r")
        .await
        .unwrap();
    assert_eq!(replay.id, refund.id);
    let too_much = system
        .client
        .refund(&intent.id, 15_001, "refund-1-s")
        .await
        .unwrap_err();
    assert_rejected(&too_much, 400, "amount_too_large");
    system.assert_every_webhook_was_well_formed();
}

#[tokio::test]
async fn a_refund_of_a_refund_fail_card_fails_with_a_refund_failed_webhook() {
    let system = spawn_system(Options::default()).await;
    let req = payment("pm_card_refund_fail");
    let intent = system
        .client
        .create_payment(&req, "refund-2")
        .await
        .unwrap();
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;

    let refund = system
        .client
        .refund(&intent.id, 25_000, "refund-2-r")
        .await
        .unwrap();

    assert_eq!(refund.status, RefundStatus::Pending);
    let events = webhooks_arrive(&system, req.booking_id, 2).await;
    let failed = events
        .iter()
        .find(|e| e.kind == event_type::REFUND_FAILED)
        .expect("a refund.failed webhook");
    assert_eq!(failed.data.refund_id.as_deref(), Some(refund.id.as_str()));
    assert_eq!(failed.data.reason.as_deref(), Some("refund_declined"));
    let stored = get_refund(&system, &refund.id).await;
    assert_eq!(stored.status, RefundStatus::Failed);
    assert_eq!(stored.failure_reason.as_deref(), Some("refund_declined"));
    let after = system.client.get_payment(&intent.id).await.unwrap();
    assert_eq!(after.amount_refunded, 0);
}

#[tokio::test]
async fn a_refund_fail_once_card_fails_its_first_refund_and_pays_a_retried_one() {
    let system = spawn_system(Options::default()).await;
    let req = payment("pm_card_refund_fail_once");
    let intent = system
        .client
        .create_payment(&req, "refund-3")
        .await
        .unwrap();
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;
    let first = system
        .client
        .refund(&intent.id, 25_000, "refund-3-r")
        .await
        .unwrap();
    webhooks_arrive(&system, req.booking_id, 2).await;
    assert_eq!(
        get_refund(&system, &first.id).await.status,
        RefundStatus::Failed
    );
    // The same key is the same (failed) refund; another key is a new one, paid.
    let again = system
        .client
        .refund(&intent.id, 25_000, "refund-3-r")
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    let retried = system
        .client
        .refund(&intent.id, 25_000, "refund-3-r2")
        .await
        .unwrap();
    assert_ne!(retried.id, first.id);
    let events = webhooks_arrive(&system, req.booking_id, 3).await;
    assert!(
        events.iter().any(|e| e.kind == event_type::REFUND_SUCCEEDED
            && e.data.refund_id.as_deref() == Some(retried.id.as_str())),
        "{events:?}"
    );
    let after = system.client.get_payment(&intent.id).await.unwrap();
    assert_eq!(after.amount_refunded, 25_000);
}

#[tokio::test]
async fn a_payment_that_has_not_succeeded_cannot_be_refunded() {
    let system = spawn_system(Options::default()).await;
    let intent = system
        .client
        .create_payment(&payment("pm_card_slow"), "refund-3")
        .await
        .unwrap();

    let err = system
        .client
        .refund(&intent.id, 100, "refund-3-r")
        .await
        .unwrap_err();

    assert_rejected(&err, 400, "payment_intent_unexpected_state");
}
