//! The local gateway as a real server on port 0, a real webhook receiver on port 0
//! that verifies every signature, and `HttpGateway` driving both over HTTP.
//!
//! - [`payments`]: card outcomes, timeouts and retries, idempotency, cancelling.
//! - [`refunds`]: refunds and their webhooks.
//! - [`webhooks`]: hostile delivery (refused, duplicated, reordered).
//! - [`api`]: authentication and validation of the HTTP API.

mod api;
mod payments;
mod refunds;
mod webhooks;

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
