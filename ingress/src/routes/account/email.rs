//! Emailed single-use tokens: verifying the email address, and asking for a password
//! reset. A token is 32 random bytes in the link; only its SHA-256 is stored, with
//! its purpose and expiry; using it marks it used in the same statement that checks
//! it, so it works once even when two requests race.

use super::{MAX_TOKEN_CHARS, new_token, normalize_email, token_hash};
use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::mail::AccountMail;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use contracts::UserId;
use serde::Deserialize;
use sqlx::{Postgres, Transaction};
use utoipa::ToSchema;
use uuid::Uuid;

/// What an emailed token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::PasswordReset => "password_reset",
        }
    }
}

/// A new token of `purpose` for `user`, valid `ttl_secs`, stored (hashed) in `tx`.
pub(super) async fn new_email_token(
    _app: &AppState,
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    purpose: Purpose,
    ttl_secs: u64,
) -> Result<String, ApiError> {
    let token = new_token();
    sqlx::query(
        "insert into account_tokens (token_hash, user_id, purpose, expires_at)
         values ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(token_hash(&token))
    .bind(user.0)
    .bind(purpose.as_str())
    .bind(ttl_secs as f64)
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

/// Uses the token of `purpose` (unknown, used, expired: `400 invalid_token`) and
/// answers its account, inside `tx`.
pub(super) async fn use_email_token(
    tx: &mut Transaction<'_, Postgres>,
    token: &str,
    purpose: Purpose,
) -> Result<UserId, ApiError> {
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Err(ApiError::InvalidAccountToken);
    }
    let user: Option<Uuid> = sqlx::query_scalar(
        "update account_tokens set used_at = now()
          where token_hash = $1 and purpose = $2 and used_at is null and expires_at > now()
         returning user_id",
    )
    .bind(token_hash(token))
    .bind(purpose.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    user.map(UserId).ok_or(ApiError::InvalidAccountToken)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "x4Jd0c3q9uQG0b8m1kq7Yp2wLr5Vt6Zs8Ae9Hf3Nn1U"}))]
pub struct TokenBody {
    /// The token of the emailed link.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "asha@example.com"}))]
pub struct ResetRequest {
    pub email: String,
}

/// Verifies the account's email with the token of the emailed link (once).
#[utoipa::path(
    post,
    path = "/v1/auth/verify-email",
    tag = "auth",
    request_body = TokenBody,
    responses(
        (status = 204, description = "The email is verified"),
        (status = 400, description = "Unknown, used or expired token (problem+json, `invalid_token`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn verify_email(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<StatusCode, ApiError> {
    let mut tx = app.db.begin().await?;
    let user = use_email_token(&mut tx, &body.token, Purpose::VerifyEmail).await?;
    sqlx::query(
        "update users set email_verified_at = coalesce(email_verified_at, now()) where id = $1",
    )
    .bind(user.0)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user, "email verified");
    Ok(StatusCode::NO_CONTENT)
}

/// Emails a new verification link to the caller (when not verified yet).
#[utoipa::path(
    post,
    path = "/v1/me/verify-email",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A new link is on its way (nothing is sent when the email is already verified)"),
    )
)]
pub async fn resend_verification(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let mut tx = app.db.begin().await?;
    let row: Option<(String, String)> =
        sqlx::query_as("select email, name from users where id = $1 and email_verified_at is null")
            .bind(caller.user_id.0)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((email, name)) = row {
        let ttl = app.settings.auth.email_verification_ttl_secs;
        let token =
            new_email_token(&app, &mut tx, caller.user_id, Purpose::VerifyEmail, ttl).await?;
        tx.commit().await?;
        app.mailer.send_later(AccountMail::verify_email(
            &app.settings,
            &email,
            &name,
            &token,
        ));
    }
    Ok(StatusCode::ACCEPTED)
}

/// Emails a password-reset link when an account has this email. The answer is the
/// same `202`, with no body, whether it does or not, and as fast: the email is sent
/// in the background, and the only work the known case adds is one insert.
/// Rate-limited per client IP with the rest of `/v1/auth/*`.
#[utoipa::path(
    post,
    path = "/v1/auth/password-reset",
    tag = "auth",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "If an account has this email, a reset link is on its way"),
        (status = 429, description = "Too many requests from this client (problem+json, `Retry-After`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn request_password_reset(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    // A malformed email cannot name an account: the same answer, nothing sent.
    let Ok(email) = normalize_email(&body.email) else {
        return Ok(StatusCode::ACCEPTED);
    };
    let mut tx = app.db.begin().await?;
    let row: Option<(Uuid, String)> = sqlx::query_as("select id, name from users where email = $1")
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some((id, name)) = row {
        let ttl = app.settings.auth.password_reset_ttl_secs;
        let token = new_email_token(&app, &mut tx, UserId(id), Purpose::PasswordReset, ttl).await?;
        tx.commit().await?;
        tracing::info!(user_id = %id, "password reset asked for");
        app.mailer.send_later(AccountMail::password_reset(
            &app.settings,
            &email,
            &name,
            &token,
        ));
    }
    Ok(StatusCode::ACCEPTED)
}
