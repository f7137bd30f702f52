//! The local gateway as a real server on port 0, a real webhook receiver on port 0
//! that verifies every signature, and `HttpGateway` driving both over HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use contracts::BookingId;
use local_gateway::{LocalGateway, LocalGatewayConfig};
use payment_adapter::model::event_type;
use payment_adapter::signature::{self, SIGNATURE_HEADER};
use payment_adapter::{
    CreatePayment, GatewayError, HttpGateway, IntentStatus, PaymentGateway, PaymentIntent, Refund,
    RefundStatus, WebhookEvent,
};
use tokio::sync::oneshot;
use uuid::Uuid;

const API_KEY: &str = "sk_test_suite";
const SECRET: &str = "whsec_suite";
/// Bound of every wait for something asynchronous to happen.
const PATIENCE: Duration = Duration::from_secs(5);

/// What the webhook receiver saw.
#[derive(Default)]
struct Hooks {
    events: Mutex<Vec<WebhookEvent>>,
    attempts: AtomicUsize,
    refuse_first: AtomicUsize,
    bad_requests: AtomicUsize,
}

impl Hooks {
    fn events_for(&self, booking: Uuid) -> Vec<WebhookEvent> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.data.booking_id == booking)
            .cloned()
            .collect()
    }
}

async fn receive(State(hooks): State<Arc<Hooks>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    hooks.attempts.fetch_add(1, Ordering::SeqCst);
    if hooks
        .refuse_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| signature::verify(SECRET.as_bytes(), h, &body, now, 300).is_ok());
    let json = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/json");
    let event = serde_json::from_slice::<WebhookEvent>(&body);
    match event {
        Ok(event) if signed && json => {
            hooks.events.lock().unwrap().push(event);
            StatusCode::OK
        }
        _ => {
            hooks.bad_requests.fetch_add(1, Ordering::SeqCst);
            StatusCode::BAD_REQUEST
        }
    }
}

struct Options {
    refuse_first: usize,
    client_timeout: Duration,
    client_attempts: usize,
    gateway: LocalGatewayConfig,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            refuse_first: 0,
            client_timeout: Duration::from_secs(2),
            client_attempts: 3,
            gateway: LocalGatewayConfig {
                api_key: API_KEY.into(),
                webhook_secret: SECRET.into(),
                ok_delay_ms: 10,
                slow_delay_ms: 200,
                hang_ms: 1000,
                ..LocalGatewayConfig::default()
            },
        }
    }
}

struct System {
    base_url: String,
    client: HttpGateway,
    hooks: Arc<Hooks>,
    stop: Option<oneshot::Sender<()>>,
    gateway_task: tokio::task::JoinHandle<()>,
}

impl System {
    fn client(&self, timeout: Duration, max_attempts: usize) -> HttpGateway {
        HttpGateway::new(&self.base_url, API_KEY, timeout, max_attempts)
            .with_backoff(Duration::from_millis(20), Duration::from_millis(100))
    }

    /// Bad signatures, wrong content types and unparseable bodies: always a bug.
    fn assert_every_webhook_was_well_formed(&self) {
        assert_eq!(self.hooks.bad_requests.load(Ordering::SeqCst), 0);
    }
}

async fn spawn_system(options: Options) -> System {
    let _ = rustls::crypto::ring::default_provider().install_default();

    let hooks = Arc::new(Hooks {
        refuse_first: AtomicUsize::new(options.refuse_first),
        ..Hooks::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr: SocketAddr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(hooks.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut cfg = options.gateway;
    cfg.webhook_url = Some(format!("http://{hook_addr}/hook"));
    let gateway = LocalGateway::build(cfg).await.unwrap();
    let base_url = format!("http://{}", gateway.addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let gateway_task = tokio::spawn(gateway.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let client = HttpGateway::new(
        &base_url,
        API_KEY,
        options.client_timeout,
        options.client_attempts,
    )
    .with_backoff(Duration::from_millis(20), Duration::from_millis(100));
    System {
        base_url,
        client,
        hooks,
        stop: Some(stop),
        gateway_task,
    }
}

/// Polls `check` until it gives a value, for at most [`PATIENCE`].
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn payment(method: &str) -> CreatePayment {
    CreatePayment {
        booking_id: BookingId(Uuid::new_v4()),
        amount: 25_000,
        currency: "INR".into(),
        payment_method: method.into(),
    }
}

async fn status_becomes(client: &HttpGateway, id: &str, status: IntentStatus) -> PaymentIntent {
    eventually(&format!("{id} to become {status:?}"), async || {
        let intent = client.get_payment(id).await.unwrap();
        (intent.status == status).then_some(intent)
    })
    .await
}

async fn webhooks_arrive(system: &System, booking: BookingId, count: usize) -> Vec<WebhookEvent> {
    eventually(&format!("{count} webhooks for {booking}"), async || {
        let events = system.hooks.events_for(booking.0);
        (events.len() >= count).then_some(events)
    })
    .await
}

/// Waits past the last moment a webhook could still be coming in these tests (the
/// gateway's delays are tens of milliseconds), so "exactly N" can be asserted.
async fn quiet_period() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn assert_rejected(err: &GatewayError, status: u16, code: &str) {
    assert!(
        matches!(err, GatewayError::Rejected { status: s, code: c, .. } if *s == status && c == code),
        "expected a {status} {code}, got {err:?}"
    );
}

async fn get_refund(system: &System, id: &str) -> Refund {
    reqwest::Client::new()
        .get(format!("{}/v1/refunds/{id}", system.base_url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

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

#[tokio::test]
async fn requests_without_the_api_key_are_refused_with_401() {
    let system = spawn_system(Options::default()).await;

    let anonymous = reqwest::Client::new()
        .get(format!("{}/v1/payment_intents/pi_x", system.base_url))
        .send()
        .await
        .unwrap();
    let wrong_key = HttpGateway::new(&system.base_url, "sk_wrong", Duration::from_secs(1), 3)
        .get_payment("pi_x")
        .await
        .unwrap_err();

    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert_rejected(&wrong_key, 401, "invalid_api_key");
}

#[tokio::test]
async fn invalid_payment_requests_are_refused_with_400() {
    let system = spawn_system(Options::default()).await;
    let cases = [
        (payment("pm_card_gold"), "invalid_payment_method"),
        (
            CreatePayment {
                amount: 0,
                ..payment("pm_card_ok")
            },
            "amount_too_small",
        ),
        (
            CreatePayment {
                currency: "inr".into(),
                ..payment("pm_card_ok")
            },
            "currency_invalid",
        ),
    ];

    for (i, (req, code)) in cases.iter().enumerate() {
        let err = system
            .client
            .create_payment(req, &format!("invalid-{i}"))
            .await
            .unwrap_err();
        assert_rejected(&err, 400, code);
    }
    let no_key = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", system.base_url))
        .bearer_auth(API_KEY)
        .json(
            &serde_json::json!({"amount": 1, "currency": "INR", "payment_method": "pm_card_ok",
                                  "metadata": {"booking_id": Uuid::new_v4()}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);
    let body: serde_json::Value = no_key.json().await.unwrap();
    assert_eq!(body["error"]["code"], "idempotency_key_missing");
    let garbage = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", system.base_url))
        .bearer_auth(API_KEY)
        .header("Idempotency-Key", "garbage-1")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
}

#[tokio::test]
async fn unknown_payments_are_404() {
    let system = spawn_system(Options::default()).await;

    let err = system.client.get_payment("pi_nope").await.unwrap_err();

    assert_rejected(&err, 404, "resource_missing");
}

#[tokio::test]
async fn healthz_answers_without_auth() {
    let system = spawn_system(Options::default()).await;

    let answer = reqwest::get(format!("{}/healthz", system.base_url))
        .await
        .unwrap();

    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn stopping_the_gateway_answers_a_hanging_request_and_returns_promptly() {
    let mut options = Options::default();
    options.gateway.hang_ms = 30_000;
    let mut system = spawn_system(options).await;
    let patient = system.client(Duration::from_secs(60), 1);
    let hanging = tokio::spawn(async move {
        patient
            .create_payment(&payment("pm_card_timeout"), "stop-1")
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    drop(system.stop.take());
    tokio::time::timeout(PATIENCE, &mut system.gateway_task)
        .await
        .expect("the gateway stops")
        .unwrap();

    assert!(started.elapsed() < Duration::from_secs(2));
    let answered = tokio::time::timeout(PATIENCE, hanging)
        .await
        .unwrap()
        .unwrap();
    assert!(answered.is_ok(), "{answered:?}");
}
