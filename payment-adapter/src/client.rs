//! [`HttpGateway`]: the [`PaymentGateway`] over a Stripe-shaped HTTP API.
//!
//! Each call is bounded twice: every attempt by the per-request timeout, and the
//! call by `max_attempts` with exponential backoff between attempts. Only answers
//! that a retry can change (timeouts, connection errors, 5xx) are retried, and every
//! attempt of one call sends the same bytes with the same `Idempotency-Key`, so a
//! retry after a lost answer gets the first result instead of a second charge.

use std::fmt;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode, Url, header};
use serde::de::DeserializeOwned;
use tracing::field::Empty;

use crate::gateway::{CreatePayment, GatewayError, PaymentGateway};
use crate::model::{
    ApiErrorBody, CreateIntentRequest, CreateRefundRequest, IntentMetadata, List, PaymentIntent,
    Refund,
};

/// The idempotency header, as Stripe names it.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// First pause between attempts; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest pause between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Most characters of an unparseable error body kept in a [`GatewayError`].
const ERROR_TEXT_MAX: usize = 200;

/// A gateway client. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct HttpGateway {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    max_attempts: usize,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl fmt::Debug for HttpGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpGateway")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl HttpGateway {
    /// A client of the gateway at `base_url` (e.g. `http://127.0.0.1:8090`),
    /// authenticating with `api_key`. `timeout` bounds each attempt (connect, send and
    /// read the answer); `max_attempts` (at least 1) bounds the attempts of one call.
    ///
    /// reqwest is built without a TLS crypto provider: this installs rustls' `ring`
    /// provider as the process default when none is installed yet.
    pub fn new(base_url: &str, api_key: &str, timeout: Duration, max_attempts: usize) -> Self {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would resend a payment to an address nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            // Fails only when the TLS backend cannot initialise, a broken build.
            .expect("the HTTP client builds with the ring provider installed");
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            max_attempts: max_attempts.max(1),
            backoff_min: BACKOFF_MIN,
            backoff_max: BACKOFF_MAX,
        }
    }

    /// Replaces the default backoff bounds ([`BACKOFF_MIN`], [`BACKOFF_MAX`]).
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url` plus path segments, each percent-encoded, so an id can never
    /// turn into another route.
    fn url(&self, segments: &[&str]) -> Result<Url, GatewayError> {
        let mut url = Url::parse(&self.base_url)
            .map_err(|e| GatewayError::Transport(format!("bad gateway url: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| GatewayError::Transport("gateway url cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// One call: attempts with backoff until success, a non-retryable error, or
    /// `max_attempts`.
    async fn call<T: DeserializeOwned>(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<T, GatewayError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.backoff_min)
            .with_max_delay(self.backoff_max)
            .with_max_times(self.max_attempts - 1)
            .with_jitter();
        let attempt = || {
            self.attempt(
                op,
                method.clone(),
                url.clone(),
                body.clone(),
                idempotency_key,
            )
        };
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(GatewayError::is_retryable)
            .notify(|err, delay| {
                tracing::warn!(op, error = %err, retry_in_ms = delay.as_millis() as u64, "gateway call failed, retrying");
            })
            .await
            .inspect_err(|err| tracing::warn!(op, error = %err, "gateway call failed"))
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<T, GatewayError> {
        let started = Instant::now();
        let result = self.send(method, url, body, idempotency_key).await;
        metrics::histogram!("gateway_call_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        if let Err(err) = &result {
            metrics::counter!("gateway_errors_total", "op" => op, "kind" => err.kind())
                .increment(1);
        }
        result
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<T, GatewayError> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(&self.api_key)
            .header(header::ACCEPT, "application/json");
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_HEADER, key);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await.map_err(from_reqwest)?;
        let status = response.status();
        // Reading the body is under the same per-request timeout.
        let bytes = response.bytes().await.map_err(from_reqwest)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| GatewayError::Decode(e.to_string()));
        }
        Err(error_answer(status, &bytes))
    }
}

/// Installs rustls' `ring` provider unless some provider is installed already.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: one provider is in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn from_reqwest(err: reqwest::Error) -> GatewayError {
    if err.is_timeout() {
        GatewayError::Timeout
    } else if err.is_decode() {
        GatewayError::Decode(err.to_string())
    } else {
        // Connect errors, resets, a body cut short: all worth another attempt.
        GatewayError::Transport(error_chain(&err))
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Maps a non-2xx answer: 5xx are `Server` (retryable), 4xx `Rejected` with the
/// Stripe-style error code, anything else a `Decode` (nobody should send it).
fn error_answer(status: StatusCode, body: &[u8]) -> GatewayError {
    let parsed = serde_json::from_slice::<ApiErrorBody>(body).ok();
    let text = || {
        let text = String::from_utf8_lossy(body);
        text.chars().take(ERROR_TEXT_MAX).collect::<String>()
    };
    if status.is_server_error() {
        GatewayError::Server {
            status: status.as_u16(),
            message: parsed.map(|b| b.error.message).unwrap_or_else(text),
        }
    } else if status.is_client_error() {
        match parsed {
            Some(b) => GatewayError::Rejected {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
            },
            None => GatewayError::Rejected {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: text(),
            },
        }
    } else {
        GatewayError::Decode(format!("unexpected status {status}"))
    }
}

impl PaymentGateway for HttpGateway {
    #[tracing::instrument(
        name = "gateway.create_payment",
        skip_all,
        fields(booking_id = %req.booking_id, idempotency_key = %idempotency_key, payment_id = Empty)
    )]
    async fn create_payment(
        &self,
        req: &CreatePayment,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, GatewayError> {
        let body = CreateIntentRequest {
            amount: req.amount,
            currency: req.currency.clone(),
            payment_method: req.payment_method.clone(),
            metadata: IntentMetadata {
                booking_id: req.booking_id.0,
            },
        };
        // Serialised once: every attempt must send the same bytes under the key.
        let body = serde_json::to_vec(&body).map_err(|e| GatewayError::Decode(e.to_string()))?;
        let url = self.url(&["v1", "payment_intents"])?;
        let intent: PaymentIntent = self
            .call(
                "create_payment",
                Method::POST,
                url,
                Some(body),
                Some(idempotency_key),
            )
            .await?;
        tracing::Span::current().record("payment_id", intent.id.as_str());
        Ok(intent)
    }

    #[tracing::instrument(name = "gateway.get_payment", skip(self), fields(booking_id = Empty))]
    async fn get_payment(&self, payment_id: &str) -> Result<PaymentIntent, GatewayError> {
        let url = self.url(&["v1", "payment_intents", payment_id])?;
        let intent: PaymentIntent = self
            .call("get_payment", Method::GET, url, None, None)
            .await?;
        tracing::Span::current().record(
            "booking_id",
            tracing::field::display(intent.metadata.booking_id),
        );
        Ok(intent)
    }

    #[tracing::instrument(name = "gateway.cancel_payment", skip(self), fields(booking_id = Empty))]
    async fn cancel_payment(&self, payment_id: &str) -> Result<PaymentIntent, GatewayError> {
        let url = self.url(&["v1", "payment_intents", payment_id, "cancel"])?;
        let intent: PaymentIntent = self
            .call("cancel_payment", Method::POST, url, None, None)
            .await?;
        tracing::Span::current().record(
            "booking_id",
            tracing::field::display(intent.metadata.booking_id),
        );
        Ok(intent)
    }

    #[tracing::instrument(name = "gateway.refund", skip(self), fields(refund_id = Empty))]
    async fn refund(
        &self,
        payment_id: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> Result<Refund, GatewayError> {
        let body = CreateRefundRequest {
            payment_intent: payment_id.to_owned(),
            amount,
        };
        let body = serde_json::to_vec(&body).map_err(|e| GatewayError::Decode(e.to_string()))?;
        let url = self.url(&["v1", "refunds"])?;
        let refund: Refund = self
            .call(
                "refund",
                Method::POST,
                url,
                Some(body),
                Some(idempotency_key),
            )
            .await?;
        tracing::Span::current().record("refund_id", refund.id.as_str());
        Ok(refund)
    }

    #[tracing::instrument(name = "gateway.get_refund", skip(self), fields(payment_id = Empty))]
    async fn get_refund(&self, refund_id: &str) -> Result<Refund, GatewayError> {
        let url = self.url(&["v1", "refunds", refund_id])?;
        let refund: Refund = self
            .call("get_refund", Method::GET, url, None, None)
            .await?;
        tracing::Span::current().record("payment_id", refund.payment_intent.as_str());
        Ok(refund)
    }

    #[tracing::instrument(name = "gateway.list_payments", skip(self))]
    async fn list_payments(
        &self,
        starting_after: Option<&str>,
        limit: u32,
    ) -> Result<List<PaymentIntent>, GatewayError> {
        let mut url = self.url(&["v1", "payment_intents"])?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit.to_string());
            if let Some(after) = starting_after {
                query.append_pair("starting_after", after);
            }
        }
        self.call("list_payments", Method::GET, url, None, None)
            .await
    }
}

#[cfg(test)]
mod tests;
