//! Two-factor authentication with TOTP (RFC 6238): enrolment, recovery codes, and
//! the code step of a login.
//!
//! - `POST /v1/me/mfa/totp` makes a secret and keeps it *pending*: the answer is the
//!   only time it is shown (secret, `otpauth://` URI, QR code).
//! - `POST /v1/me/mfa/totp/confirm {code}` proves the app holds it: MFA is on from
//!   then on, and ten recovery codes are answered once (only their SHA-256 is kept).
//! - A login of such an account answers a challenge (`mfa_token`, stored hashed,
//!   `auth.mfa_challenge_ttl_secs`, at most `auth.mfa_challenge_attempts_max` codes);
//!   `POST /v1/auth/mfa {mfa_token, code}` with a TOTP code or a recovery code gives
//!   the token pair, marked as two-factor (`amr`).
//!
//! A TOTP code is accepted once: the account keeps the last time step it accepted
//! (`users.mfa_last_step`, under a row lock), and a code of that step or an earlier
//! one is refused. The secret is stored sealed ([`::auth::totp::SecretBox`],
//! ChaCha20-Poly1305 bound to the account), never answered after enrolment nor logged.

use super::session::{MfaChallenge, TokenPair, issue};
use super::{MAX_TOKEN_CHARS, new_token, parse_role, token_hash};
use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::state::AppState;
use ::auth::totp;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use contracts::UserId;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};
use utoipa::ToSchema;
use uuid::Uuid;

/// Longest code accepted (a recovery code with dashes and spaces).
const MAX_CODE_CHARS: usize = 64;

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// The secret, base32 (for typing into an authenticator app).
    pub secret: String,
    /// The `otpauth://totp/...` URI authenticator apps read (also as the QR code).
    pub otpauth_uri: String,
    /// The URI as a QR code, PNG, base64.
    pub qr_png_base64: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "123456"}))]
pub struct CodeBody {
    /// The 6-digit code the authenticator app shows (or, where said, a recovery code).
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes for when the authenticator is lost; shown only now.
    pub recovery_codes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"mfa_token": "x4Jd0c3q9uQG0b8m1kq7Yp2wLr5Vt6Zs8Ae9Hf3Nn1U", "code": "123456"}))]
pub struct MfaLogin {
    /// The `mfa_token` of the login's answer.
    pub mfa_token: String,
    /// A TOTP code, or one of the recovery codes (each works once).
    pub code: String,
}

/// The account's TOTP secret from its sealed form. One that does not open (the key
/// changed: `auth.mfa_encryption_key`, or `auth.jwt_secret` when that is unset) is an
/// internal error the operator must see, not a wrong code.
fn open(app: &AppState, user: UserId, sealed: &[u8]) -> Result<Vec<u8>, ApiError> {
    app.mfa_secrets
        .open(user.0.as_bytes(), sealed)
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "the TOTP secret of {user} does not open with the configured key"
            ))
        })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks `code` against the account's secret and records its step (so it cannot be
/// used again), or uses one of its recovery codes when `recovery` allows, in `tx`
/// after the account row is locked. `Ok(false)`: not a valid, unused code.
async fn accept_code(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    secret: &[u8],
    last_step: i64,
    code: &str,
    recovery: bool,
) -> Result<bool, ApiError> {
    if code.len() > MAX_CODE_CHARS {
        return Ok(false);
    }
    if let Some(step) = totp::check(secret, code, now_secs()) {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if step <= last_step {
            // The same code (or an older one) again: a replay.
            return Ok(false);
        }
        sqlx::query("update users set mfa_last_step = $2 where id = $1")
            .bind(user.0)
            .bind(step)
            .execute(&mut **tx)
            .await?;
        return Ok(true);
    }
    if recovery && totp::looks_like_recovery_code(code) {
        let used = sqlx::query(
            "update mfa_recovery_codes set used_at = now()
              where user_id = $1 and code_hash = $2 and used_at is null",
        )
        .bind(user.0)
        .bind(totp::recovery_code_hash(code))
        .execute(&mut **tx)
        .await?;
        return Ok(used.rows_affected() == 1);
    }
    Ok(false)
}

/// Starts enrolment: a new secret, pending until a code confirms it.
#[utoipa::path(
    post,
    path = "/v1/me/mfa/totp",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The secret (shown only now); not active until confirmed", body = TotpEnrolment),
        (status = 409, description = "Two-factor authentication is already on (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn enrol(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let secret = totp::new_secret();
    let sealed = app.mfa_secrets.seal(caller.user_id.0.as_bytes(), &secret);
    let email: Option<String> = sqlx::query_scalar(
        "update users set mfa_pending_secret = $2
          where id = $1 and mfa_enabled_at is null returning email",
    )
    .bind(caller.user_id.0)
    .bind(&sealed)
    .fetch_optional(&app.db)
    .await?;
    let Some(email) = email else {
        return Err(ApiError::Conflict(
            "two-factor authentication is already on; turn it off first to enrol again".into(),
        ));
    };
    let (b32, uri) = totp::enrolment(&secret, &email).map_err(ApiError::Internal)?;
    let png = tickets::qr_png(&uri).map_err(ApiError::Internal)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TotpEnrolment {
            secret: b32,
            otpauth_uri: uri,
            qr_png_base64: base64::engine::general_purpose::STANDARD.encode(png),
        }),
    )
        .into_response())
}

/// Confirms enrolment with a code of the new secret: MFA is required at login from
/// now on; answers ten recovery codes, once.
#[utoipa::path(
    post,
    path = "/v1/me/mfa/totp/confirm",
    tag = "auth",
    security(("bearer" = [])),
    request_body = CodeBody,
    responses(
        (status = 200, description = "Two-factor authentication is on; the recovery codes (shown only now)", body = RecoveryCodes),
        (status = 403, description = "Wrong code (problem+json, `invalid_mfa_code`)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "No enrolment started, or already on (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn confirm(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<axum::Json<RecoveryCodes>, ApiError> {
    let mut tx = app.db.begin().await?;
    let row: Option<(Option<Vec<u8>>, bool, i64)> = sqlx::query_as(
        "select mfa_pending_secret, mfa_enabled_at is not null, mfa_last_step
           from users where id = $1 for update",
    )
    .bind(caller.user_id.0)
    .fetch_optional(&mut *tx)
    .await?;
    let (secret, last_step) = match row {
        Some((Some(sealed), false, last)) => (open(&app, caller.user_id, &sealed)?, last),
        Some((_, true, _)) => {
            return Err(ApiError::Conflict(
                "two-factor authentication is already on".into(),
            ));
        }
        _ => {
            return Err(ApiError::Conflict(
                "no enrolment started: POST /v1/me/mfa/totp first".into(),
            ));
        }
    };
    if !accept_code(
        &mut tx,
        caller.user_id,
        &secret,
        last_step,
        &body.code,
        false,
    )
    .await?
    {
        return Err(ApiError::InvalidMfaCode);
    }
    sqlx::query(
        "update users set mfa_secret = mfa_pending_secret, mfa_pending_secret = null,
                          mfa_enabled_at = now()
          where id = $1",
    )
    .bind(caller.user_id.0)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from mfa_recovery_codes where user_id = $1")
        .bind(caller.user_id.0)
        .execute(&mut *tx)
        .await?;
    let codes = totp::new_recovery_codes();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
    sqlx::query(
        "insert into mfa_recovery_codes (user_id, code_hash) select $1, unnest($2::bytea[])",
    )
    .bind(caller.user_id.0)
    .bind(&hashes)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %caller.user_id, "two-factor authentication turned on");
    Ok(axum::Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turns two-factor authentication off, with a current code or a recovery code.
#[utoipa::path(
    delete,
    path = "/v1/me/mfa/totp",
    tag = "auth",
    security(("bearer" = [])),
    request_body = CodeBody,
    responses(
        (status = 204, description = "Two-factor authentication is off; the secret and recovery codes are deleted"),
        (status = 403, description = "Wrong code (problem+json, `invalid_mfa_code`)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor authentication is not on (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn disable(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<StatusCode, ApiError> {
    let mut tx = app.db.begin().await?;
    let row: Option<(Option<Vec<u8>>, i64)> = sqlx::query_as(
        "select mfa_secret, mfa_last_step from users
          where id = $1 and mfa_enabled_at is not null for update",
    )
    .bind(caller.user_id.0)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((Some(sealed), last_step)) = row else {
        return Err(ApiError::Conflict(
            "two-factor authentication is not on".into(),
        ));
    };
    let secret = open(&app, caller.user_id, &sealed)?;
    if !accept_code(
        &mut tx,
        caller.user_id,
        &secret,
        last_step,
        &body.code,
        true,
    )
    .await?
    {
        // A used recovery code or step stays used: keep what was recorded.
        tx.commit().await?;
        return Err(ApiError::InvalidMfaCode);
    }
    sqlx::query(
        "update users set mfa_secret = null, mfa_pending_secret = null, mfa_enabled_at = null
          where id = $1",
    )
    .bind(caller.user_id.0)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from mfa_recovery_codes where user_id = $1")
        .bind(caller.user_id.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(user_id = %caller.user_id, "two-factor authentication turned off");
    Ok(StatusCode::NO_CONTENT)
}

/// A new login challenge for `user` (the password was right).
pub(super) async fn challenge(app: &AppState, user: UserId) -> Result<MfaChallenge, ApiError> {
    let token = new_token();
    let ttl = app.settings.auth.mfa_challenge_ttl_secs;
    sqlx::query(
        "insert into mfa_challenges (token_hash, user_id, expires_at)
         values ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(token_hash(&token))
    .bind(user.0)
    .bind(ttl as f64)
    .execute(&app.db)
    .await?;
    Ok(MfaChallenge {
        mfa_required: true,
        mfa_token: token,
        expires_in: ttl,
    })
}

/// The code step of a login with two-factor authentication: the challenge and a
/// TOTP code (or a recovery code, once) give the token pair.
#[utoipa::path(
    post,
    path = "/v1/auth/mfa",
    tag = "auth",
    request_body = MfaLogin,
    responses(
        (status = 200, description = "Tokens (marked as a two-factor login)", body = TokenPair),
        (status = 401, description = "Unknown, expired or spent challenge: log in again (problem+json, `invalid_mfa_token`)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong, used or replayed code (problem+json, `invalid_mfa_code`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn complete_login(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<MfaLogin>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    if body.mfa_token.len() > MAX_TOKEN_CHARS {
        return Err(ApiError::InvalidMfaToken);
    }
    let mut tx = app.db.begin().await?;
    // Each try counts, right or wrong: a challenge allows a handful of codes.
    let user: Option<Uuid> = sqlx::query_scalar(
        "update mfa_challenges set attempts = attempts + 1
          where token_hash = $1 and used_at is null and expires_at > now()
            and attempts < $2
         returning user_id",
    )
    .bind(token_hash(&body.mfa_token))
    .bind(app.settings.auth.mfa_challenge_attempts_max)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(user) = user.map(UserId) else {
        return Err(ApiError::InvalidMfaToken);
    };
    let row: Option<(Option<Vec<u8>>, i64, String)> = sqlx::query_as(
        "select mfa_secret, mfa_last_step, role from users where id = $1 for update",
    )
    .bind(user.0)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((Some(sealed), last_step, role)) = row else {
        // MFA was turned off meanwhile: log in again.
        return Err(ApiError::InvalidMfaToken);
    };
    let secret = open(&app, user, &sealed)?;
    if !accept_code(&mut tx, user, &secret, last_step, &body.code, true).await? {
        tx.commit().await?;
        return Err(ApiError::InvalidMfaCode);
    }
    sqlx::query("update mfa_challenges set used_at = now() where token_hash = $1")
        .bind(token_hash(&body.mfa_token))
        .execute(&mut *tx)
        .await?;
    let tokens = issue(&app, &mut tx, user, parse_role(&role)?, None, true).await?;
    tx.commit().await?;
    Ok(axum::Json(tokens))
}
