//! A small local SMS provider: the stand-in for Twilio's Messages API that the run
//! command and the tests send to, speaking its REST shape for real over HTTP:
//!
//! - `POST /2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`, `From`,
//!   `Body`, HTTP basic auth with the account sid and auth token: `201` with the
//!   message resource (`sid` `SM...`, `status` `queued`); `401` for other
//!   credentials, `400` (Twilio's error shape, code 21211) for a `To` that is not
//!   E.164 or an empty body;
//! - `GET` of the same path: `{messages: [...]}`, newest last (what the tests read);
//! - `POST /control/fail {count, status}`: the next `count` sends answer `status`
//!   (500 or 503; `count` 4294967295: always), a test's failing provider.
//!
//! Each accepted message is kept in memory and, when a folder is given, written
//! there as `<sid>.json`.

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Default)]
pub struct SmsConfig {
    /// Address to listen on (`127.0.0.1:0` in tests).
    pub listen: String,
    /// The account sid and auth token clients must present.
    pub account_sid: String,
    pub auth_token: String,
    /// Folder each message is written to as `<sid>.json` (none: memory only).
    pub dir: Option<PathBuf>,
}

/// One accepted message, as the API answers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SmsMessage {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub status: String,
}

/// What tests see and steer of a running provider.
#[derive(Debug, Default)]
pub struct SmsState {
    messages: Mutex<Vec<SmsMessage>>,
    fail_next: AtomicU32,
    fail_status: AtomicU16,
    /// Sends answered with a failure so far.
    pub failed: AtomicU32,
}

impl SmsState {
    /// The messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<SmsMessage> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The next `count` sends answer `status` (`u32::MAX`: every one).
    pub fn fail_next(&self, count: u32, status: u16) {
        self.fail_status.store(status, Ordering::SeqCst);
        self.fail_next.store(count, Ordering::SeqCst);
    }

    fn take_failure(&self) -> Option<u16> {
        self.fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 => None,
                u32::MAX => Some(u32::MAX),
                n => Some(n - 1),
            })
            .ok()
            .map(|_| self.fail_status.load(Ordering::SeqCst))
    }
}

struct Shared {
    config: SmsConfig,
    state: Arc<SmsState>,
}

pub struct SmsProvider {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl SmsProvider {
    pub async fn bind(config: SmsConfig) -> std::io::Result<Self> {
        if let Some(dir) = &config.dir {
            tokio::fs::create_dir_all(dir).await?;
        }
        let listener = TcpListener::bind(&config.listen).await?;
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                config,
                state: Arc::default(),
            }),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The provider's base URL (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn state(&self) -> Arc<SmsState> {
        self.shared.state.clone()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(send).get(list),
            )
            .route("/control/fail", post(control_fail))
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .with_state(self.shared);
        if let Err(e) = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "sms provider stopped");
        }
    }
}

/// Twilio's error body.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = serde_json::json!({
        "code": code, "message": message, "status": status.as_u16(),
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
    });
    (status, Json(body)).into_response()
}

fn authorized(shared: &Shared, sid: &str, headers: &HeaderMap) -> bool {
    let expected = format!("{}:{}", shared.config.account_sid, shared.config.auth_token);
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    sid == shared.config.account_sid && given.as_deref() == Some(expected.as_bytes())
}

#[derive(Debug, Deserialize)]
struct SendForm {
    #[serde(rename = "To", default)]
    to: String,
    #[serde(rename = "From", default)]
    from: String,
    #[serde(rename = "Body", default)]
    body: String,
}

fn e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

async fn send(
    State(shared): State<Arc<Shared>>,
    UrlPath(sid): UrlPath<String>,
    headers: HeaderMap,
    Form(form): Form<SendForm>,
) -> Response {
    if !authorized(&shared, &sid, &headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if let Some(status) = shared.state.take_failure() {
        shared.state.failed.fetch_add(1, Ordering::SeqCst);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, 20500, "Internal Server Error (injected)");
    }
    if !e164(&form.to) {
        return error(
            StatusCode::BAD_REQUEST,
            21211,
            "The 'To' number is not a valid phone number.",
        );
    }
    if form.body.is_empty() || form.body.chars().count() > 1600 {
        return error(
            StatusCode::BAD_REQUEST,
            21602,
            "Message body is required (at most 1600 characters).",
        );
    }
    let msg = SmsMessage {
        sid: format!("SM{}", uuid::Uuid::new_v4().simple()),
        account_sid: sid,
        to: form.to,
        from: form.from,
        body: form.body,
        status: "queued".into(),
    };
    if let Some(dir) = &shared.config.dir {
        let path = dir.join(format!("{}.json", msg.sid));
        if let Ok(json) = serde_json::to_vec_pretty(&msg)
            && let Err(e) = tokio::fs::write(&path, json).await
        {
            tracing::warn!(error = %e, path = %path.display(), "could not store a message");
        }
    }
    if let Ok(mut m) = shared.state.messages.lock() {
        m.push(msg.clone());
    }
    (StatusCode::CREATED, Json(msg)).into_response()
}

async fn list(
    State(shared): State<Arc<Shared>>,
    UrlPath(sid): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &sid, &headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    Json(serde_json::json!({ "messages": shared.state.messages() })).into_response()
}

#[derive(Debug, Deserialize)]
struct FailBody {
    count: u32,
    #[serde(default = "default_fail_status")]
    status: u16,
}

fn default_fail_status() -> u16 {
    503
}

async fn control_fail(State(shared): State<Arc<Shared>>, Json(b): Json<FailBody>) -> StatusCode {
    if !(500..=599).contains(&b.status) {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    shared.state.fail_next(b.count, b.status);
    StatusCode::NO_CONTENT
}
