//! RFC 9457 problem details. Every error the API returns goes through [`ApiError`];
//! its status mapping is one `match` without a wildcard arm.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Validation(String),
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("the refresh token is unknown, expired, used or revoked; log in again")]
    InvalidRefreshToken,
    #[error("this role may not do that")]
    Forbidden,
    #[error(
        "verify your email address before paying (follow the link we emailed, or ask for a new one at POST /v1/me/verify-email)"
    )]
    EmailNotVerified,
    #[error(
        "this role must sign in with a second factor: turn on two-factor authentication (POST /v1/me/mfa/totp, or /account in the web app), then sign in again with a code"
    )]
    MfaEnrollmentRequired,
    #[error("the link's token is unknown, used or expired; ask for a new one")]
    InvalidAccountToken,
    #[error("the code is wrong, or was already used")]
    InvalidMfaCode,
    #[error("the sign-in challenge is unknown, expired or spent; sign in again")]
    InvalidMfaToken,
    #[error("the current password is wrong")]
    WrongPassword,
    /// Phone verification: the code does not match the pending one.
    #[error("the code is wrong; check the SMS (a few tries, then ask for a new code)")]
    WrongPhoneCode,
    /// Phone verification: no code is pending (none asked, expired or tries spent).
    #[error(
        "no verification code is pending (none was asked for, it expired, or its tries are spent); ask for a new one"
    )]
    NoPendingPhoneCode,
    /// Sign-in with a provider: the `state` is unknown, expired or was used.
    #[error("the sign-in attempt is unknown, expired or was already used; start again")]
    InvalidSignInState,
    /// Sign-in with a provider: its answer did not prove who signed in (a refused
    /// code, an ID token with a bad signature, issuer, audience, nonce or expiry).
    #[error("{0}")]
    ProviderSignInRefused(String),
    /// Sign-in with a provider whose address it has not verified: never linked to
    /// an account (it could be anyone's address).
    #[error(
        "the provider has not verified this email address; verify it there, or sign in with a password"
    )]
    ProviderEmailNotVerified,
    /// A new password of a good length that is still easy to guess; `reason` is
    /// the machine word of [`::auth::strength::Weakness`].
    #[error("{}", .0.explain())]
    WeakPassword(::auth::strength::Weakness),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    ShowNotOnSale(String),
    #[error("{0}")]
    IdempotencyKeyReused(String),
    #[error("{0}")]
    Conflict(String),
    /// Shows of a recurring schedule that overlap: nothing was created.
    #[error("{} of the shows overlap another (the cleaning buffer included), first at {}; nothing was scheduled", .0.len(), .0.first().map(|o| o.starts_at_local.as_str()).unwrap_or("-"))]
    ScheduleOverlaps(Vec<Overlap>),
    /// A card number where a gateway token belongs; the detail never repeats it.
    #[error("{}", contracts::PaymentMethod::CARD_NUMBER_RULE)]
    CardNumberRefused,
    /// `POST /v1/bookings/{id}/release` of a booking that is not held.
    #[error("{0}")]
    NotReleasable(String),
    /// A booking whose payment is in flight: the gateway decides it first.
    #[error("{0}")]
    PaymentInProgress(String),
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request body did not fully arrive within the request deadline
    /// ([`crate::deadline`]).
    #[error("the request body did not arrive within {timeout_ms} ms; send it faster")]
    RequestTimeout { timeout_ms: u64 },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// A ticket that does not admit anyone: forged, malformed, of a booking that is
    /// not (or no longer) confirmed. `reason` is a machine word (API "Door").
    #[error("the ticket is not valid: {reason}")]
    TicketNotValid { reason: String },
    /// The booking was checked in before; the answer carries when and where.
    #[error("booking {booking_id} was checked in at {checked_in_at}{}", gate.as_deref().map(|g| format!(" at gate {g}")).unwrap_or_default())]
    AlreadyCheckedIn {
        booking_id: uuid::Uuid,
        checked_in_at: String,
        gate: Option<String>,
    },
}

/// An RFC 9457 problem: every 4xx and 5xx answer has this body, with content type
/// `application/problem+json`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "https://docs.booking.local/problems/validation_failed",
    "title": "Validation failed",
    "status": 422,
    "detail": "quantity must be between 1 and 10",
    "code": "validation_failed"
}))]
pub struct Problem<'a> {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    /// What went wrong with this request, for a human.
    detail: String,
    /// A stable machine word: `validation_failed`, `not_found`, `rate_limited`, ...
    code: &'a str,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", "Bad request"),
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
            ),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            ApiError::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid credentials",
            ),
            ApiError::InvalidRefreshToken => (
                StatusCode::UNAUTHORIZED,
                "invalid_refresh_token",
                "Invalid refresh token",
            ),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::EmailNotVerified => (
                StatusCode::FORBIDDEN,
                "email_not_verified",
                "Email not verified",
            ),
            ApiError::MfaEnrollmentRequired => (
                StatusCode::FORBIDDEN,
                "mfa_enrollment_required",
                "Two-factor authentication required",
            ),
            ApiError::InvalidAccountToken => {
                (StatusCode::BAD_REQUEST, "invalid_token", "Invalid token")
            }
            ApiError::InvalidMfaCode => (StatusCode::FORBIDDEN, "invalid_mfa_code", "Invalid code"),
            ApiError::InvalidMfaToken => (
                StatusCode::UNAUTHORIZED,
                "invalid_mfa_token",
                "Invalid sign-in challenge",
            ),
            ApiError::WrongPassword => (StatusCode::FORBIDDEN, "wrong_password", "Wrong password"),
            ApiError::WrongPhoneCode => {
                (StatusCode::UNPROCESSABLE_ENTITY, "wrong_code", "Wrong code")
            }
            ApiError::NoPendingPhoneCode => {
                (StatusCode::CONFLICT, "no_pending_code", "No pending code")
            }
            ApiError::InvalidSignInState => (
                StatusCode::BAD_REQUEST,
                "invalid_state",
                "Invalid sign-in state",
            ),
            ApiError::ProviderSignInRefused(_) => (
                StatusCode::UNAUTHORIZED,
                "provider_sign_in_refused",
                "Provider sign-in refused",
            ),
            ApiError::ProviderEmailNotVerified => (
                StatusCode::FORBIDDEN,
                "provider_email_not_verified",
                "Email not verified by the provider",
            ),
            ApiError::WeakPassword(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_password",
                "Weak password",
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::ShowNotOnSale(_) => {
                (StatusCode::CONFLICT, "show_not_on_sale", "Show not on sale")
            }
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::ScheduleOverlaps(_) => {
                (StatusCode::CONFLICT, "schedule_overlaps", "Shows overlap")
            }
            ApiError::CardNumberRefused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "card_number_refused",
                "Card number refused",
            ),
            ApiError::NotReleasable(_) => {
                (StatusCode::CONFLICT, "not_releasable", "Not releasable")
            }
            ApiError::PaymentInProgress(_) => (
                StatusCode::CONFLICT,
                "payment_in_progress",
                "Payment in progress",
            ),
            ApiError::IdempotencyKeyReused(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::RequestTimeout { .. } => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "Request timeout",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
            ApiError::TicketNotValid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "ticket_not_valid",
                "Ticket not valid",
            ),
            ApiError::AlreadyCheckedIn { .. } => (
                StatusCode::CONFLICT,
                "already_checked_in",
                "Already checked in",
            ),
        }
    }

    /// Extension members of the problem body (RFC 9457 section 3.2), beside the
    /// standard ones: what a client needs to act without parsing `detail`.
    fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        match self {
            ApiError::TicketNotValid { reason } => {
                m.insert("reason".into(), reason.clone().into());
            }
            ApiError::ScheduleOverlaps(overlaps) => {
                m.insert(
                    "overlaps".into(),
                    serde_json::to_value(overlaps).unwrap_or_default(),
                );
            }
            ApiError::WeakPassword(weakness) => {
                m.insert("reason".into(), weakness.code().into());
            }
            ApiError::AlreadyCheckedIn {
                booking_id,
                checked_in_at,
                gate,
            } => {
                m.insert("booking_id".into(), booking_id.to_string().into());
                m.insert("checked_in_at".into(), checked_in_at.clone().into());
                m.insert("gate".into(), gate.clone().into());
            }
            _ => {}
        }
        m
    }
}

/// Builds a problem+json response.
pub fn problem_response(status: StatusCode, code: &str, title: &str, detail: String) -> Response {
    problem_response_with(status, code, title, detail, serde_json::Map::new())
}

/// Builds a problem+json response with extension members beside the standard ones.
pub fn problem_response_with(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: String,
    extensions: serde_json::Map<String, serde_json::Value>,
) -> Response {
    let body = Problem {
        kind: format!("https://docs.booking.local/problems/{code}"),
        title,
        status: status.as_u16(),
        detail,
        code,
    };
    let mut body = serde_json::to_value(body).unwrap_or_default();
    if let Some(obj) = body.as_object_mut() {
        for (k, v) in extensions {
            obj.entry(k).or_insert(v);
        }
    }
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        let detail = match &self {
            // 5xx bodies stay generic; the cause chain is logged once here.
            ApiError::Unavailable(e) | ApiError::Internal(e) => {
                tracing::error!(error = ?e, code, "request failed");
                if matches!(self, ApiError::Unavailable(_)) {
                    "a dependency is unavailable; retry with the same Idempotency-Key".to_owned()
                } else {
                    "internal error".to_owned()
                }
            }
            other => other.to_string(),
        };
        let mut res = problem_response_with(status, code, title, detail, self.extensions());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ApiError::PayloadTooLarge) {
            // The rest of the body was never read, so the connection cannot carry
            // another request: say so, or a client reusing it races the close (the
            // harness's client did, against an ingress in its own process).
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let ApiError::RateLimited { retry_after_secs } = self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        res
    }
}

impl From<contracts::PaymentMethodError> for ApiError {
    fn from(e: contracts::PaymentMethodError) -> Self {
        match e {
            contracts::PaymentMethodError::CardNumber => ApiError::CardNumberRefused,
            contracts::PaymentMethodError::Rule => ApiError::Validation(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if platform::db::is_unavailable(&e) {
            ApiError::Unavailable(e.into())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

/// Fallback of unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

/// Fallback of known routes called with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A show the request would create that overlaps another.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Overlap {
    /// The new show's start (on the theater's clock).
    pub starts_at_local: String,
    /// The show it meets: a live show of the screen, or `null` for another show of
    /// this request.
    pub other_show_id: Option<uuid::Uuid>,
    /// The start of the show it meets (on the theater's clock).
    pub other_starts_at_local: String,
}
