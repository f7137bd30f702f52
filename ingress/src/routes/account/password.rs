//! Changing the password (the current one required) and resetting it with an emailed
//! token; both end the account's other logins.
//!
//! Ending a login means both of its tokens stop working at once: the refresh-token
//! families are revoked, and the account's session generation (`users.auth_epoch`)
//! is bumped, so every access token issued before is refused on its next request by
//! any ingress instance ([`crate::auth::Authenticator`]). A change keeps the caller's
//! own login (its refresh-token family, named by the access token's `fam`): its
//! current access token is refused like the others, and its refresh token gives a
//! pair of the new generation (the web app does this by itself on the `401`).

use super::email::{Purpose, use_email_token};
use super::{MAX_PASSWORD_CHARS, check_password};
use crate::auth::Authenticated;
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::state::AppState;
use ::auth::passwords;
use axum::extract::State;
use axum::http::StatusCode;
use contracts::UserId;
use serde::Deserialize;
use sqlx::{Postgres, Transaction};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "correct horse battery", "new_password": "another horse battery"}))]
pub struct PasswordChange {
    pub current_password: String,
    /// 8 to 128 characters; not only whitespace, not one of the commonest passwords,
    /// not containing the email address (else `422 weak_password` with a `reason`).
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "x4Jd0c3q9uQG0b8m1kq7Yp2wLr5Vt6Zs8Ae9Hf3Nn1U", "new_password": "another horse battery"}))]
pub struct ResetConfirm {
    /// The token of the emailed link.
    pub token: String,
    /// 8 to 128 characters; not only whitespace, not one of the commonest passwords,
    /// not containing the email address (else `422 weak_password` with a `reason`).
    pub new_password: String,
}

/// Ends every login of `user` except the refresh-token family `keep`, in `tx`.
pub(super) async fn end_logins(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    keep: Option<Uuid>,
) -> Result<(), ApiError> {
    sqlx::query("update users set auth_epoch = auth_epoch + 1 where id = $1")
        .bind(user.0)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "update refresh_tokens set revoked_at = coalesce(revoked_at, now())
          where user_id = $1 and revoked_at is null
            and ($2::uuid is null or family_id <> $2)",
    )
    .bind(user.0)
    .bind(keep)
    .execute(&mut **tx)
    .await?;
    // A login waiting for its code was started with the old password.
    sqlx::query("delete from mfa_challenges where user_id = $1")
        .bind(user.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Changes the caller's password. Every other login of the account ends; this one
/// continues through its refresh token.
#[utoipa::path(
    post,
    path = "/v1/me/password",
    tag = "auth",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; every other login of the account has ended (this one refreshes its access token)"),
        (status = 403, description = "The current password is wrong (problem+json, `wrong_password`)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account was deleted meanwhile (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this account (problem+json, `Retry-After`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_password(
    State(app): State<AppState>,
    Authenticated(caller, claims): Authenticated,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let row: Option<(String, String)> =
        sqlx::query_as("select email, password_hash from users where id = $1")
            .bind(caller.user_id.0)
            .fetch_optional(&app.db)
            .await?;
    let Some((email, stored)) = row else {
        return Err(ApiError::NotFound("this account no longer exists".into()));
    };
    check_password(&body.new_password, &email)?;
    // Guessing the current password here counts against the account like a login.
    let attempt = match &app.limiter {
        Some(limiter) => limiter.login_attempt(&email, None).await?,
        None => None,
    };
    let right = body.current_password.chars().count() <= MAX_PASSWORD_CHARS
        && passwords::verify(body.current_password, stored)
            .await
            .map_err(ApiError::Internal)?;
    if !right {
        return Err(ApiError::WrongPassword);
    }
    if let Some(attempt) = attempt {
        attempt.succeeded().await;
    }
    let hash = passwords::hash(body.new_password)
        .await
        .map_err(ApiError::Internal)?;
    let mut tx = app.db.begin().await?;
    sqlx::query("update users set password_hash = $2 where id = $1")
        .bind(caller.user_id.0)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    end_logins(&mut tx, caller.user_id, claims.family).await?;
    tx.commit().await?;
    tracing::info!(user_id = %caller.user_id, "password changed; other logins ended");
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a new password with the token of the emailed reset link (once, within its
/// 30 minutes). Every login of the account ends. Following the link also proves the
/// email address: it counts as verified.
#[utoipa::path(
    post,
    path = "/v1/auth/password-reset/confirm",
    tag = "auth",
    request_body = ResetConfirm,
    responses(
        (status = 204, description = "The password is set; every login of the account has ended"),
        (status = 400, description = "Unknown, used or expired token (problem+json, `invalid_token`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn confirm_password_reset(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    let mut tx = app.db.begin().await?;
    let user = use_email_token(&mut tx, &body.token, Purpose::PasswordReset).await?;
    let email: String = sqlx::query_scalar("select email from users where id = $1")
        .bind(user.0)
        .fetch_one(&mut *tx)
        .await?;
    // A refused password rolls the transaction back: the link stays usable.
    check_password(&body.new_password, &email)?;
    let hash = passwords::hash(body.new_password)
        .await
        .map_err(ApiError::Internal)?;
    sqlx::query(
        "update users set password_hash = $2,
                          email_verified_at = coalesce(email_verified_at, now())
          where id = $1",
    )
    .bind(user.0)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    // Any other reset link of the account dies with this one.
    sqlx::query(
        "update account_tokens set used_at = now()
          where user_id = $1 and purpose = 'password_reset' and used_at is null",
    )
    .bind(user.0)
    .execute(&mut *tx)
    .await?;
    end_logins(&mut tx, user, None).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user, "password reset; every login ended");
    Ok(StatusCode::NO_CONTENT)
}
