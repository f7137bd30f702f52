//! Hostile webhook delivery: refused, duplicated, reordered.

use super::*;

#[tokio::test]
async fn a_webhook_refused_twice_is_delivered_on_the_third_attempt() {
    let system = spawn_system(Options {
        refuse_first: 2,
        ..Options::default()
    })
    .await;
    let req = payment("pm_card_ok");

    system
        .client
        .create_payment(&req, "retry-hook-1")
        .await
        .unwrap();

    let events = webhooks_arrive(&system, req.booking_id, 1).await;
    assert_eq!(events[0].kind, event_type::PAYMENT_SUCCEEDED);
    assert_eq!(system.hooks.attempts.load(Ordering::SeqCst), 3);
    system.assert_every_webhook_was_well_formed();
}

#[tokio::test]
async fn with_duplicate_webhooks_every_event_arrives_twice_with_the_same_id() {
    let mut options = Options::default();
    options.gateway.duplicate_webhooks = 1.0;
    options.gateway.seed = Some(7);
    let system = spawn_system(options).await;
    let req = payment("pm_card_ok");
    let intent = system.client.create_payment(&req, "dup-1").await.unwrap();
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;

    system
        .client
        .refund(&intent.id, 5_000, "dup-1-r")
        .await
        .unwrap();

    let events = webhooks_arrive(&system, req.booking_id, 4).await;
    quiet_period().await;
    let events_now = system.hooks.events_for(req.booking_id.0);
    assert_eq!(events_now.len(), 4, "{events:?}");
    for kind in [event_type::PAYMENT_SUCCEEDED, event_type::REFUND_SUCCEEDED] {
        let copies: Vec<_> = events_now.iter().filter(|e| e.kind == kind).collect();
        assert_eq!(copies.len(), 2, "{kind}: {copies:?}");
        assert_eq!(copies[0], copies[1], "the copies of {kind} differ");
    }
}

#[tokio::test]
async fn reordered_webhooks_all_arrive_signed() {
    let mut options = Options::default();
    options.gateway.reorder_webhooks_ms = 150;
    options.gateway.seed = Some(42);
    let system = spawn_system(options).await;
    let requests: Vec<_> = (0..6).map(|_| payment("pm_card_ok")).collect();

    for (i, req) in requests.iter().enumerate() {
        system
            .client
            .create_payment(req, &format!("reorder-{i}"))
            .await
            .unwrap();
    }

    for req in &requests {
        webhooks_arrive(&system, req.booking_id, 1).await;
    }
    system.assert_every_webhook_was_well_formed();
}
