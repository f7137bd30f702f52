//! The bundled local gateway: a small HTTP server that speaks the Stripe-shaped API
//! [`payment_adapter::HttpGateway`] calls and sends real signed webhooks, so the
//! platform and its tests exercise the same network paths (timeouts, retries,
//! duplicate and late webhooks) a real provider would put them through.
//!
//! Everything lives in memory and is lost on restart; nothing is evicted (it is a
//! development and test server, not a ledger).
//!
//! # HTTP API
//!
//! All `/v1` routes need `Authorization: Bearer <api_key>` (else `401`
//! `invalid_api_key`). Errors are `{"error": {"type", "code", "message"}}`.
//!
//! | route | behaviour |
//! |---|---|
//! | `POST /v1/payment_intents` | body `{amount, currency, payment_method, metadata: {booking_id}}`, header `Idempotency-Key` required. Answers the intent, `processing`. The same key with the same body answers the same intent; with another body `400 idempotency_key_in_use` |
//! | `GET /v1/payment_intents` | a page of the intents, newest first: `{object: "list", data, has_more}`; query `limit` (1-100, default 10) and `starting_after` (an intent id: the page after it; unknown: `400 resource_missing`) |
//! | `GET /v1/payment_intents/{id}` | the intent, `404 resource_missing` if unknown |
//! | `POST /v1/payment_intents/{id}/cancel` | `processing -> canceled` (no webhook follows); cancelling a canceled intent answers it again; any other state `400 payment_intent_unexpected_state` |
//! | `POST /v1/refunds` | body `{payment_intent, amount}`, header `Idempotency-Key` required (keys are scoped per route). Only for `succeeded` intents and at most what is neither refunded nor pending; answers the refund, `pending` |
//! | `GET /v1/refunds/{id}` | the refund, `404 resource_missing` if unknown |
//! | `GET /healthz` | `200 ok`, no auth |
//!
//! # Payment methods (card test tokens)
//!
//! | method | behaviour |
//! |---|---|
//! | `pm_card_ok` | `succeeded` after `ok_delay_ms`, then webhook `payment.succeeded` |
//! | `pm_card_declined` | `requires_payment_method` with `last_payment_error.code = card_declined` after `ok_delay_ms`, then `payment.failed` (reason `card_declined`) |
//! | `pm_card_slow` | like `pm_card_ok`, after `slow_delay_ms` |
//! | `pm_card_error` | the first request for an idempotency key answers `500` and creates nothing; later ones behave like `pm_card_ok` |
//! | `pm_card_timeout` | the first request for a key creates the intent (like `pm_card_ok`) but answers only after `hang_ms`, so a client with a shorter timeout retries and gets the created intent |
//! | `pm_card_refund_fail` | pays like `pm_card_ok`; every refund of it ends `failed` (reason `refund_declined`) with webhook `refund.failed` |
//! | `pm_card_refund_fail_once` | like `pm_card_refund_fail` for its first refund; a later refund (another idempotency key) succeeds, as after a cause fixed by an operator |
//!
//! Anything else is `400 invalid_payment_method`; `amount` must be > 0 and
//! `currency` three uppercase letters.
//!
//! Error codes: `401 invalid_api_key`; `400 idempotency_key_missing`,
//! `idempotency_key_invalid` (not 1-255 visible ASCII), `parameter_invalid` (body
//! is not the expected JSON), `amount_too_small`, `currency_invalid`,
//! `invalid_payment_method`, `idempotency_key_in_use`,
//! `payment_intent_unexpected_state`, `amount_too_large`, `resource_missing` (a
//! refund of an unknown intent); `404 resource_missing` (unknown id or route);
//! `500 internal_error` (only `pm_card_error`).
//!
//! Refunds become `succeeded` (adding to the intent's `amount_refunded`) or `failed`
//! after `ok_delay_ms`, then webhook `refund.succeeded` / `refund.failed` with
//! `data.refund_id` set.
//!
//! # Webhooks
//!
//! Each event is POSTed as JSON to `webhook_url` with
//! [`payment_adapter::SIGNATURE_HEADER`] signed at send time, by its own task.
//! Each attempt has 5 s; a non-2xx answer or a transport error is retried after 100 ms, doubling to 5 s,
//! up to `webhook_max_attempts` attempts. `duplicate_webhooks` is the probability
//! that an event is delivered twice (same event id); `reorder_webhooks_ms` delays
//! each delivery by a random 0..=N ms so they arrive out of order. With `seed` set,
//! those draws come from a seeded RNG (ids are always random, so two runs never
//! collide in a receiver's dedupe table).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;
use uuid::Uuid;

use payment_adapter::client::IDEMPOTENCY_HEADER;
use payment_adapter::model::{
    ApiError, ApiErrorBody, CreateIntentRequest, CreateRefundRequest, IntentStatus, List,
    OBJECT_LIST, OBJECT_PAYMENT_INTENT, OBJECT_REFUND, PaymentError, PaymentIntent, Refund,
    RefundStatus, WebhookData, WebhookEvent, event_type,
};
use payment_adapter::signature;

mod http;
use http::router;

/// The card test tokens the local gateway understands.
pub mod methods {
    pub const OK: &str = "pm_card_ok";
    pub const DECLINED: &str = "pm_card_declined";
    pub const SLOW: &str = "pm_card_slow";
    pub const ERROR: &str = "pm_card_error";
    pub const TIMEOUT: &str = "pm_card_timeout";
    pub const REFUND_FAIL: &str = "pm_card_refund_fail";
    pub const REFUND_FAIL_ONCE: &str = "pm_card_refund_fail_once";
}

/// Largest request body accepted; real ones are about 150 bytes.
const BODY_LIMIT_BYTES: usize = 16 * 1024;
/// First pause before a webhook retry; it doubles up to [`WEBHOOK_BACKOFF_MAX`].
const WEBHOOK_BACKOFF_MIN: Duration = Duration::from_millis(100);
const WEBHOOK_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Bound of one webhook delivery attempt (connect, send, read the answer).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for background tasks (all of them watch the stop token).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a [`LocalGateway`]; [`Default`] suits tests (port 0, no webhooks).
#[derive(Clone)]
pub struct LocalGatewayConfig {
    /// Address to bind, `host:port` (port 0 picks a free one).
    pub listen: String,
    /// The bearer token clients must send.
    pub api_key: String,
    /// Where events are POSTed; `None` sends none.
    pub webhook_url: Option<String>,
    /// The HMAC key of [`payment_adapter::signature::sign`].
    pub webhook_secret: String,
    /// Delay before an ordinary payment or refund settles.
    pub ok_delay_ms: u64,
    /// Delay before a `pm_card_slow` payment settles.
    pub slow_delay_ms: u64,
    /// How long the first `pm_card_timeout` request of a key waits before answering.
    pub hang_ms: u64,
    /// Attempts per webhook delivery (at least 1).
    pub webhook_max_attempts: u32,
    /// Probability (0..=1) that an event is delivered twice.
    pub duplicate_webhooks: f64,
    /// Random extra delay 0..=N ms per delivery, so deliveries arrive out of order.
    pub reorder_webhooks_ms: u64,
    /// Seed of the RNG behind `duplicate_webhooks` and `reorder_webhooks_ms`.
    pub seed: Option<u64>,
}

impl Default for LocalGatewayConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            api_key: "sk_test_local".into(),
            webhook_url: None,
            webhook_secret: "whsec_local_development".into(),
            ok_delay_ms: 20,
            slow_delay_ms: 3000,
            hang_ms: 5000,
            webhook_max_attempts: 8,
            duplicate_webhooks: 0.0,
            reorder_webhooks_ms: 0,
            seed: None,
        }
    }
}

impl fmt::Debug for LocalGatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalGatewayConfig")
            .field("listen", &self.listen)
            .field("api_key", &"<redacted>")
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &"<redacted>")
            .field("ok_delay_ms", &self.ok_delay_ms)
            .field("slow_delay_ms", &self.slow_delay_ms)
            .field("hang_ms", &self.hang_ms)
            .field("webhook_max_attempts", &self.webhook_max_attempts)
            .field("duplicate_webhooks", &self.duplicate_webhooks)
            .field("reorder_webhooks_ms", &self.reorder_webhooks_ms)
            .field("seed", &self.seed)
            .finish()
    }
}

/// A bound, not yet serving, local gateway.
pub struct LocalGateway {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl LocalGateway {
    /// Checks `cfg` and binds its address (so port 0 works: read [`Self::addr`]).
    pub async fn build(cfg: LocalGatewayConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&cfg.duplicate_webhooks),
            "duplicate_webhooks must be a probability in 0..=1, got {}",
            cfg.duplicate_webhooks
        );
        anyhow::ensure!(
            cfg.webhook_max_attempts >= 1,
            "webhook_max_attempts must be at least 1"
        );
        anyhow::ensure!(!cfg.api_key.is_empty(), "api_key must not be empty");
        if let Some(url) = &cfg.webhook_url {
            reqwest::Url::parse(url).with_context(|| format!("webhook_url {url:?}"))?;
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let webhooks = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the webhook HTTP client")?;
        let listener = TcpListener::bind(&cfg.listen)
            .await
            .with_context(|| format!("binding {}", cfg.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let rng = match cfg.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let shared = Arc::new(Shared {
            cfg,
            store: Mutex::new(Store::default()),
            rng: Mutex::new(rng),
            webhooks,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        });
        Ok(Self {
            listener,
            addr,
            shared,
        })
    }

    /// Sends the webhooks to `url` (`None`: sends none) instead of the configured
    /// `webhook_url`: a receiver that needs the gateway's address to start (its
    /// own settings name it) is built after the gateway.
    pub fn webhooks_to(mut self, url: Option<String>) -> anyhow::Result<Self> {
        if let Some(url) = &url {
            reqwest::Url::parse(url).with_context(|| format!("webhook_url {url:?}"))?;
        }
        Arc::get_mut(&mut self.shared)
            .context("the gateway is serving already")?
            .cfg
            .webhook_url = url;
        Ok(self)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the base URL for [`payment_adapter::HttpGateway::new`].
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until `shutdown` completes, then stops: in-flight requests finish
    /// (hanging ones answer at once), pending settlements and webhook deliveries are
    /// abandoned, and background tasks get 5 s to notice.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let stop = self.shared.stop.clone();
        // Dropping this future (an aborted task) stops the background tasks too.
        let _stop_on_drop = stop.clone().drop_guard();
        let trigger = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => {}
                () = trigger.cancelled() => {}
            }
            trigger.cancel();
        });
        tracing::info!(addr = %self.addr, "local gateway serving");
        let app = router(self.shared.clone());
        if let Err(err) = axum::serve(self.listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .await
        {
            tracing::error!(error = %err, "local gateway server failed");
        }
        stop.cancel();
        self.shared.tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("local gateway background tasks did not stop in time");
        }
        tracing::info!("local gateway stopped");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    Ok,
    Declined,
    Slow,
    Error,
    Timeout,
    RefundFail,
}

impl Card {
    fn parse(method: &str) -> Option<Self> {
        Some(match method {
            methods::OK => Card::Ok,
            methods::DECLINED => Card::Declined,
            methods::SLOW => Card::Slow,
            methods::ERROR => Card::Error,
            methods::TIMEOUT => Card::Timeout,
            methods::REFUND_FAIL | methods::REFUND_FAIL_ONCE => Card::RefundFail,
            _ => return None,
        })
    }
}

/// A request seen under an idempotency key and what it created.
struct Remembered<R> {
    request: R,
    id: String,
}

#[derive(Default)]
struct Store {
    intents: HashMap<String, PaymentIntent>,
    /// Intent ids in creation order (lists page through them newest first).
    intent_order: Vec<String>,
    refunds: HashMap<String, Refund>,
    intent_keys: HashMap<String, Remembered<CreateIntentRequest>>,
    refund_keys: HashMap<String, Remembered<CreateRefundRequest>>,
    /// Keys whose `pm_card_error` request already failed once.
    errored_keys: HashSet<String>,
    /// Minor units of pending refunds per intent, held back so concurrent refunds
    /// cannot exceed what was captured.
    refunds_pending: HashMap<String, i64>,
}

struct Shared {
    cfg: LocalGatewayConfig,
    store: Mutex<Store>,
    rng: Mutex<StdRng>,
    webhooks: reqwest::Client,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves plain maps behind: keep serving.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps `ms`, or returns false if the gateway is stopping.
    async fn pause(&self, ms: u64) -> bool {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => true,
            () = self.stop.cancelled() => false,
        }
    }

    /// After the method's delay, moves a still-`processing` intent to its outcome
    /// and sends the webhook. A cancel in between wins: nothing is sent.
    fn settle_intent_later(self: &Arc<Self>, intent_id: String, card: Card) {
        let delay = match card {
            Card::Slow => self.cfg.slow_delay_ms,
            _ => self.cfg.ok_delay_ms,
        };
        let shared = self.clone();
        let span = tracing::info_span!("settle_intent", payment_id = %intent_id);
        self.tasks.spawn(
            async move {
                if !shared.pause(delay).await {
                    return;
                }
                let event = {
                    let mut store = shared.store();
                    let Some(intent) = store.intents.get_mut(&intent_id) else {
                        return;
                    };
                    if intent.status != IntentStatus::Processing {
                        tracing::info!(status = ?intent.status, "intent left processing before settling");
                        return;
                    }
                    if card == Card::Declined {
                        intent.status = IntentStatus::RequiresPaymentMethod;
                        intent.last_payment_error = Some(PaymentError {
                            code: "card_declined".into(),
                            message: "Your card was declined.".into(),
                        });
                        payment_event(intent, event_type::PAYMENT_FAILED, Some("card_declined"))
                    } else {
                        intent.status = IntentStatus::Succeeded;
                        payment_event(intent, event_type::PAYMENT_SUCCEEDED, None)
                    }
                };
                tracing::info!(kind = %event.kind, booking_id = %event.data.booking_id, "intent settled");
                shared.deliver(event);
            }
            .instrument(span),
        );
    }

    /// After `ok_delay_ms`, settles a pending refund and sends the webhook.
    fn settle_refund_later(self: &Arc<Self>, refund_id: String, fails: bool) {
        let shared = self.clone();
        let span = tracing::info_span!("settle_refund", refund_id = %refund_id);
        self.tasks.spawn(
            async move {
                if !shared.pause(shared.cfg.ok_delay_ms).await {
                    return;
                }
                let event = {
                    let mut store = shared.store();
                    let store = &mut *store;
                    let Some(refund) = store.refunds.get_mut(&refund_id) else {
                        return;
                    };
                    let Some(intent) = store.intents.get_mut(&refund.payment_intent) else {
                        return;
                    };
                    if refund.status != RefundStatus::Pending {
                        return;
                    }
                    if let Some(pending) = store.refunds_pending.get_mut(&intent.id) {
                        *pending -= refund.amount;
                    }
                    let (kind, reason) = if fails {
                        refund.status = RefundStatus::Failed;
                        refund.failure_reason = Some("refund_declined".into());
                        (event_type::REFUND_FAILED, Some("refund_declined".to_owned()))
                    } else {
                        refund.status = RefundStatus::Succeeded;
                        intent.amount_refunded += refund.amount;
                        (event_type::REFUND_SUCCEEDED, None)
                    };
                    WebhookEvent {
                        id: new_id("evt"),
                        kind: kind.into(),
                        created: unix_now(),
                        data: WebhookData {
                            payment_id: intent.id.clone(),
                            booking_id: intent.metadata.booking_id,
                            amount: refund.amount,
                            currency: intent.currency.clone(),
                            reason,
                            refund_id: Some(refund.id.clone()),
                        },
                    }
                };
                tracing::info!(kind = %event.kind, booking_id = %event.data.booking_id, "refund settled");
                shared.deliver(event);
            }
            .instrument(span),
        );
    }

    /// Spawns the delivery (or, when hostile, deliveries) of one event.
    fn deliver(self: &Arc<Self>, event: WebhookEvent) {
        let Some(url) = self.cfg.webhook_url.clone() else {
            tracing::debug!(event_id = %event.id, "no webhook_url: event not sent");
            return;
        };
        let body = match serde_json::to_vec(&event) {
            Ok(body) => Bytes::from(body),
            Err(err) => {
                tracing::error!(error = %err, "cannot serialise a webhook event");
                return;
            }
        };
        let delays: Vec<u64> = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            let duplicate =
                self.cfg.duplicate_webhooks > 0.0 && rng.random_bool(self.cfg.duplicate_webhooks);
            let copies = if duplicate { 2 } else { 1 };
            (0..copies)
                .map(|_| match self.cfg.reorder_webhooks_ms {
                    0 => 0,
                    max => rng.random_range(0..=max),
                })
                .collect()
        };
        for (copy, delay_ms) in delays.into_iter().enumerate() {
            let shared = self.clone();
            let url = url.clone();
            let body = body.clone();
            let span = tracing::info_span!(
                "webhook",
                event_id = %event.id,
                kind = %event.kind,
                booking_id = %event.data.booking_id,
                copy
            );
            self.tasks.spawn(
                async move { shared.deliver_one(&url, body, delay_ms).await }.instrument(span),
            );
        }
    }

    async fn deliver_one(&self, url: &str, body: Bytes, delay_ms: u64) {
        if delay_ms > 0 && !self.pause(delay_ms).await {
            return;
        }
        let max_attempts = self.cfg.webhook_max_attempts.max(1);
        let mut backoff = WEBHOOK_BACKOFF_MIN;
        for attempt in 1..=max_attempts {
            // Signed per attempt: a late retry must not arrive with a stale timestamp.
            let signature = signature::sign(self.cfg.webhook_secret.as_bytes(), unix_now(), &body);
            let send = self
                .webhooks
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(signature::SIGNATURE_HEADER, signature)
                .body(body.clone())
                .send();
            let outcome = tokio::select! {
                outcome = send => outcome,
                () = self.stop.cancelled() => {
                    tracing::info!(attempt, "webhook delivery abandoned at shutdown");
                    return;
                }
            };
            match outcome {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(
                        attempt,
                        status = response.status().as_u16(),
                        "webhook delivered"
                    );
                    return;
                }
                Ok(response) => {
                    tracing::warn!(
                        attempt,
                        status = response.status().as_u16(),
                        "webhook refused"
                    );
                }
                Err(err) => {
                    tracing::warn!(attempt, error = %err, "webhook delivery failed");
                }
            }
            if attempt == max_attempts {
                tracing::error!(attempts = max_attempts, "webhook given up");
                return;
            }
            if !self.pause(backoff.as_millis() as u64).await {
                tracing::info!(attempt, "webhook delivery abandoned at shutdown");
                return;
            }
            backoff = (backoff * 2).min(WEBHOOK_BACKOFF_MAX);
        }
    }
}

fn payment_event(intent: &PaymentIntent, kind: &str, reason: Option<&str>) -> WebhookEvent {
    WebhookEvent {
        id: new_id("evt"),
        kind: kind.into(),
        created: unix_now(),
        data: WebhookData {
            payment_id: intent.id.clone(),
            booking_id: intent.metadata.booking_id,
            amount: intent.amount,
            currency: intent.currency.clone(),
            reason: reason.map(str::to_owned),
            refund_id: None,
        },
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::new_v4().simple())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
