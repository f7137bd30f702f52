//! Card outcomes, timeouts and retries, idempotency, cancelling.

use super::*;

#[tokio::test]
async fn a_good_card_is_processing_then_succeeds_with_one_signed_webhook() {
    let system = spawn_system(Options::default()).await;
    let req = payment("pm_card_ok");

    let intent = system.client.create_payment(&req, "ok-1").await.unwrap();

    assert!(intent.id.starts_with("pi_"));
    assert_eq!(intent.object, "payment_intent");
    assert_eq!(intent.status, IntentStatus::Processing);
    assert_eq!(intent.metadata.booking_id, req.booking_id.0);
    assert_eq!((intent.amount, intent.currency.as_str()), (25_000, "INR"));
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;
    webhooks_arrive(&system, req.booking_id, 1).await;
    quiet_period().await;
    let events = system.hooks.events_for(req.booking_id.0);
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert!(event.id.starts_with("evt_"));
    assert_eq!(event.kind, event_type::PAYMENT_SUCCEEDED);
    assert_eq!(event.data.payment_id, intent.id);
    assert_eq!(
        (event.data.amount, event.data.currency.as_str()),
        (25_000, "INR")
    );
    assert_eq!(
        (
            event.data.reason.as_deref(),
            event.data.refund_id.as_deref()
        ),
        (None, None)
    );
    system.assert_every_webhook_was_well_formed();
}

#[tokio::test]
async fn a_declined_card_fails_with_a_payment_failed_webhook() {
    let system = spawn_system(Options::default()).await;
    let req = payment("pm_card_declined");

    let intent = system
        .client
        .create_payment(&req, "declined-1")
        .await
        .unwrap();

    assert_eq!(intent.status, IntentStatus::Processing);
    let failed = status_becomes(
        &system.client,
        &intent.id,
        IntentStatus::RequiresPaymentMethod,
    )
    .await;
    assert_eq!(failed.last_payment_error.unwrap().code, "card_declined");
    let events = webhooks_arrive(&system, req.booking_id, 1).await;
    assert_eq!(events[0].kind, event_type::PAYMENT_FAILED);
    assert_eq!(events[0].data.reason.as_deref(), Some("card_declined"));
    assert_eq!(events[0].data.payment_id, intent.id);
    system.assert_every_webhook_was_well_formed();
}

#[tokio::test]
async fn a_slow_card_stays_processing_until_the_slow_delay_then_succeeds() {
    let system = spawn_system(Options::default()).await;
    let req = payment("pm_card_slow");

    let intent = system.client.create_payment(&req, "slow-1").await.unwrap();

    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let still = system.client.get_payment(&intent.id).await.unwrap();
    assert_eq!(still.status, IntentStatus::Processing);
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    let events = webhooks_arrive(&system, req.booking_id, 1).await;
    assert_eq!(events[0].kind, event_type::PAYMENT_SUCCEEDED);
}

#[tokio::test]
async fn a_gateway_error_is_retried_by_the_client_and_creates_one_intent() {
    let system = spawn_system(Options::default()).await;
    let req = payment("pm_card_error");

    let intent = system.client.create_payment(&req, "error-1").await.unwrap();

    assert_eq!(intent.status, IntentStatus::Processing);
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;
    let again = system.client.create_payment(&req, "error-1").await.unwrap();
    assert_eq!(again.id, intent.id);
    webhooks_arrive(&system, req.booking_id, 1).await;
    quiet_period().await;
    let events = system.hooks.events_for(req.booking_id.0);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].data.payment_id, intent.id);
}

#[tokio::test]
async fn the_first_request_of_an_error_card_answers_500_and_creates_nothing() {
    let system = spawn_system(Options::default()).await;
    let single_shot = system.client(Duration::from_secs(2), 1);
    let req = payment("pm_card_error");

    let err = single_shot
        .create_payment(&req, "error-2")
        .await
        .unwrap_err();

    assert!(
        matches!(err, GatewayError::Server { status: 500, .. }),
        "{err:?}"
    );
    let intent = single_shot.create_payment(&req, "error-2").await.unwrap();
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;
    webhooks_arrive(&system, req.booking_id, 1).await;
    quiet_period().await;
    assert_eq!(system.hooks.events_for(req.booking_id.0).len(), 1);
}

#[tokio::test]
async fn a_hanging_create_times_out_and_the_retry_gets_the_same_intent() {
    let system = spawn_system(Options {
        client_timeout: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let req = payment("pm_card_timeout");

    let started = Instant::now();
    let intent = system
        .client
        .create_payment(&req, "timeout-1")
        .await
        .unwrap();

    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "no timeout happened ({took:?})"
    );
    assert!(
        took < Duration::from_millis(1000),
        "waited out the hang ({took:?})"
    );
    let again = system
        .client
        .create_payment(&req, "timeout-1")
        .await
        .unwrap();
    assert_eq!(again.id, intent.id);
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;
    let events = webhooks_arrive(&system, req.booking_id, 1).await;
    assert_eq!(events[0].data.payment_id, intent.id);
    quiet_period().await;
    assert_eq!(system.hooks.events_for(req.booking_id.0).len(), 1);
}

#[tokio::test]
async fn a_client_without_retries_sees_the_hang_as_a_timeout() {
    let system = spawn_system(Options::default()).await;
    let impatient = system.client(Duration::from_millis(200), 1);

    let err = impatient
        .create_payment(&payment("pm_card_timeout"), "timeout-2")
        .await
        .unwrap_err();

    assert!(matches!(err, GatewayError::Timeout), "{err:?}");
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_intent_and_another_body_is_refused() {
    let system = spawn_system(Options::default()).await;
    let req = payment("pm_card_ok");

    let first = system.client.create_payment(&req, "idem-1").await.unwrap();
    let second = system.client.create_payment(&req, "idem-1").await.unwrap();
    let other_key = system.client.create_payment(&req, "idem-2").await.unwrap();
    let changed = CreatePayment {
        amount: 1,
        ..req.clone()
    };
    let err = system
        .client
        .create_payment(&changed, "idem-1")
        .await
        .unwrap_err();

    assert_eq!(first.id, second.id);
    assert_ne!(first.id, other_key.id);
    assert_rejected(&err, 400, "idempotency_key_in_use");
}

#[tokio::test]
async fn a_processing_payment_can_be_cancelled_and_then_sends_no_webhook() {
    let system = spawn_system(Options::default()).await;
    let req = payment("pm_card_slow");
    let intent = system
        .client
        .create_payment(&req, "cancel-1")
        .await
        .unwrap();

    let canceled = system.client.cancel_payment(&intent.id).await.unwrap();

    assert_eq!(canceled.status, IntentStatus::Canceled);
    let again = system.client.cancel_payment(&intent.id).await.unwrap();
    assert_eq!(again.status, IntentStatus::Canceled);
    // Past the slow delay (200 ms): the settlement must have seen the cancel.
    quiet_period().await;
    let after = system.client.get_payment(&intent.id).await.unwrap();
    assert_eq!(after.status, IntentStatus::Canceled);
    assert!(system.hooks.events_for(req.booking_id.0).is_empty());
}

#[tokio::test]
async fn a_succeeded_payment_cannot_be_cancelled() {
    let system = spawn_system(Options::default()).await;
    let intent = system
        .client
        .create_payment(&payment("pm_card_ok"), "cancel-2")
        .await
        .unwrap();
    status_becomes(&system.client, &intent.id, IntentStatus::Succeeded).await;

    let err = system.client.cancel_payment(&intent.id).await.unwrap_err();

    assert_rejected(&err, 400, "payment_intent_unexpected_state");
}

#[tokio::test]
async fn payments_are_listed_newest_first_a_page_at_a_time() {
    let system = spawn_system(Options::default()).await;
    let mut created = vec![];
    for i in 0..5 {
        let intent = system
            .client
            .create_payment(&payment("pm_card_ok"), &format!("list-{i}"))
            .await
            .unwrap();
        created.push(intent.id);
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let page = system
            .client
            .list_payments(cursor.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.data.len() <= 2);
        seen.extend(page.data.iter().map(|p| p.id.clone()));
        cursor = page.data.last().map(|p| p.id.clone());
        if !page.has_more {
            break;
        }
    }
    created.reverse();
    assert_eq!(seen, created, "every payment once, newest first");
    let err = system
        .client
        .list_payments(Some("pi_unknown"), 2)
        .await
        .unwrap_err();
    assert_rejected(&err, 400, "resource_missing");
    let err = system.client.list_payments(None, 0).await.unwrap_err();
    assert_rejected(&err, 400, "parameter_invalid");
}
