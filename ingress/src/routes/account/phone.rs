//! Phone verification (API.md, Round 2 "Accounts"): `POST /v1/me/phone/verify
//! {phone}` sends a 6-digit code by SMS, `POST /v1/me/phone/confirm {code}` makes
//! that phone the account's, verified. Booking SMS go only to a verified phone.
//!
//! One pending code per account; only its SHA-256, keyed with the server's JWT
//! secret, is stored; it expires after `auth.phone_code_ttl_secs` and takes
//! `auth.phone_code_attempts_max` tries (a wrong code spends one, in the statement
//! that checks it, so concurrent guesses cannot overspend). An account has at most
//! `auth.phone_codes_per_hour` codes sent an hour (then `429`).

use super::check_phone;
use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phone": "+919812345678"}))]
pub struct PhoneVerify {
    /// E.164: `+` and 7 to 15 digits.
    pub phone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "042917"}))]
pub struct PhoneConfirm {
    /// The 6 digits of the SMS.
    pub code: String,
}

/// What is stored of a code: SHA-256 over the server's secret, the account and the code.
fn code_hash(app: &AppState, user: Uuid, code: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(app.settings.auth.jwt_secret.expose_secret().as_bytes());
    h.update(user.as_bytes());
    h.update(code.as_bytes());
    h.finalize().to_vec()
}

/// Sends a verification code by SMS to `phone`.
#[utoipa::path(
    post,
    path = "/v1/me/phone/verify",
    tag = "auth",
    security(("bearer" = [])),
    request_body = PhoneVerify,
    responses(
        (status = 202, description = "A 6-digit code is on its way by SMS (valid 10 minutes by default)"),
        (status = 422, description = "The phone is not E.164 (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many codes asked for this hour (problem+json, `Retry-After`)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "No SMS provider is configured, or it failed (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn verify_phone(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PhoneVerify>,
) -> Result<StatusCode, ApiError> {
    let phone = check_phone(&body.phone)?;
    let Some(sms) = app.sms.as_ref() else {
        return Err(ApiError::Unavailable(anyhow::anyhow!(
            "no SMS provider is configured (notifier.sms_url)"
        )));
    };
    let a = &app.settings.auth;
    let code = format!("{:06}", rand::random_range(0..1_000_000u32));
    let mut tx = app.db.begin().await?;
    let stored: Option<Uuid> = sqlx::query_scalar(
        "insert into phone_codes (user_id, phone, code_hash, expires_at, attempts_left)
         values ($1, $2, $3, now() + make_interval(secs => $4), $5)
         on conflict (user_id) do update
            set phone = excluded.phone, code_hash = excluded.code_hash,
                expires_at = excluded.expires_at, attempts_left = excluded.attempts_left,
                created_at = now(),
                sent_in_window = case when phone_codes.window_start < now() - interval '1 hour'
                                      then 1 else phone_codes.sent_in_window + 1 end,
                window_start = case when phone_codes.window_start < now() - interval '1 hour'
                                    then now() else phone_codes.window_start end
          where phone_codes.window_start < now() - interval '1 hour'
             or phone_codes.sent_in_window < $6
         returning user_id",
    )
    .bind(caller.user_id.0)
    .bind(&phone)
    .bind(code_hash(&app, caller.user_id.0, &code))
    .bind(a.phone_code_ttl_secs as f64)
    .bind(a.phone_code_attempts_max.max(1))
    .bind(a.phone_codes_per_hour.max(1))
    .fetch_optional(&mut *tx)
    .await?;
    if stored.is_none() {
        let wait: i64 = sqlx::query_scalar(
            "select greatest(1, ceil(extract(epoch from
                    (window_start + interval '1 hour' - now()))))::int8
               from phone_codes where user_id = $1",
        )
        .bind(caller.user_id.0)
        .fetch_one(&mut *tx)
        .await?;
        return Err(ApiError::RateLimited {
            retry_after_secs: u64::try_from(wait).unwrap_or(1),
        });
    }
    let minutes = a.phone_code_ttl_secs.div_ceil(60);
    let text =
        format!("Your booking verification code is {code}. It expires in {minutes} minutes.");
    // Committed only once the provider took it: a failed send leaves nothing pending.
    sms.send(&phone, &text).await.map_err(|e| {
        tracing::warn!(error = %e, "sending a phone verification code failed");
        ApiError::Unavailable(anyhow::anyhow!("the SMS provider failed; try again"))
    })?;
    tx.commit().await?;
    tracing::info!(user_id = %caller.user_id, "phone verification code sent");
    Ok(StatusCode::ACCEPTED)
}

/// Confirms the phone with the SMS code: it becomes the account's phone, verified.
#[utoipa::path(
    post,
    path = "/v1/me/phone/confirm",
    tag = "auth",
    security(("bearer" = [])),
    request_body = PhoneConfirm,
    responses(
        (status = 204, description = "The phone is the account's, verified"),
        (status = 409, description = "No code is pending: none was asked for, it expired, or its tries are spent (problem+json, `no_pending_code`)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong code (problem+json, `wrong_code`; spends a try), or not 6 digits (`validation_failed`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn confirm_phone(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PhoneConfirm>,
) -> Result<StatusCode, ApiError> {
    let code = body.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::Validation(
            "code must be the 6 digits of the SMS".into(),
        ));
    }
    let user = caller.user_id.0;
    let mut tx = app.db.begin().await?;
    // Spends a try and compares, under the row's lock.
    let row: Option<(String, bool)> = sqlx::query_as(
        "update phone_codes set attempts_left = attempts_left - 1
          where user_id = $1 and expires_at > now() and attempts_left > 0
         returning phone, code_hash = $2",
    )
    .bind(user)
    .bind(code_hash(&app, user, code))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((phone, right)) = row else {
        return Err(ApiError::NoPendingPhoneCode);
    };
    if !right {
        tx.commit().await?;
        return Err(ApiError::WrongPhoneCode);
    }
    sqlx::query("delete from phone_codes where user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query("update users set phone = $2, phone_verified_at = now() where id = $1")
        .bind(user)
        .bind(&phone)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(user_id = %caller.user_id, "phone verified");
    Ok(StatusCode::NO_CONTENT)
}
