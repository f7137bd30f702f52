//! Registration, login, refresh-token rotation and logout: where token pairs are
//! issued.

use super::profile::{PROFILE_COLUMNS, Profile, ProfileRow, profile};
use super::{
    MAX_NAME_CHARS, MAX_PASSWORD_CHARS, MAX_TOKEN_CHARS, check_password, check_phone, clean_text,
    email, mfa, new_token, normalize_email, parse_role, token_hash,
};
use crate::auth::{Amr, Role};
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::state::AppState;
use ::auth::Session;
use ::auth::passwords;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::UserId;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "asha@example.com", "password": "correct horse battery", "name": "Asha Rao", "phone": "+919812345678"}))]
pub struct Register {
    pub email: String,
    /// 8 to 128 characters; not only whitespace, not one of the commonest passwords,
    /// not containing the email address (else `422 weak_password` with a `reason`).
    pub password: String,
    pub name: String,
    /// `+` and 7 to 15 digits.
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "asha@example.com", "password": "correct horse battery"}))]
pub struct Login {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "x4Jd0c3q9uQG0b8m1kq7Yp2wLr5Vt6Zs8Ae9Hf3Nn1U"}))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// What a login, registration or refresh hands out.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Exchange it at `POST /v1/auth/refresh` before it expires; it works once.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub user: Profile,
    #[serde(flatten)]
    pub tokens: TokenPair,
}

/// The password was right and the account has two-factor authentication on: no
/// tokens yet; `POST /v1/auth/mfa {mfa_token, code}` within `expires_in` seconds.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    pub mfa_token: String,
    pub expires_in: u64,
}

/// A login's answer: the token pair, or the challenge of the code step.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    Tokens(TokenPair),
    Mfa(MfaChallenge),
}

/// Issues an access token and the next refresh token of `family` (a new family,
/// i.e. a new login, when `None`), inside `tx`. `mfa`: the login used a second
/// factor; the family remembers it, so refreshed tokens say so too.
pub(super) async fn issue(
    app: &AppState,
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    role: Role,
    family: Option<Uuid>,
    mfa: bool,
) -> Result<TokenPair, ApiError> {
    let refresh = new_token();
    let family = family.unwrap_or_else(Uuid::now_v7);
    let ttl = i64::try_from(app.settings.auth.refresh_token_ttl_secs).unwrap_or(i64::MAX);
    sqlx::query(
        "insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at, mfa)
         values ($1, $2, $3, $4, now() + make_interval(secs => $5), $6)",
    )
    .bind(Uuid::now_v7())
    .bind(user.0)
    .bind(family)
    .bind(token_hash(&refresh))
    .bind(ttl as f64)
    .bind(mfa)
    .execute(&mut **tx)
    .await?;
    let epoch: i64 = sqlx::query_scalar("select auth_epoch from users where id = $1")
        .bind(user.0)
        .fetch_one(&mut **tx)
        .await?;
    let session = Session {
        epoch,
        family,
        amr: if mfa { Amr::Mfa } else { Amr::Password },
    };
    let access_token = app
        .tokens
        .mint_session(user, role, session)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(TokenPair {
        access_token,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: app.settings.auth.access_token_ttl_secs,
    })
}

/// Creates a customer account, logs it in and emails it a verification link.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "auth",
    request_body = Register,
    responses(
        (status = 201, description = "The account and its first tokens; a verification link is emailed", body = Registered),
        (status = 409, description = "An account with this email exists (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<Register>,
) -> Result<Response, ApiError> {
    let email = normalize_email(&body.email)?;
    check_password(&body.password, &email)?;
    let name = clean_text("name", &body.name, MAX_NAME_CHARS)?;
    let phone = body.phone.as_deref().map(check_phone).transpose()?;
    let hash = passwords::hash(body.password)
        .await
        .map_err(ApiError::Internal)?;
    let id = UserId::new_v7();
    let mut tx = app.db.begin().await?;
    let row: ProfileRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into users (id, email, password_hash, name, phone, role)
         values ($1, $2, $3, $4, $5, 'customer') returning {PROFILE_COLUMNS}"
    )))
    .bind(id.0)
    .bind(&email)
    .bind(&hash)
    .bind(&name)
    .bind(&phone)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match e.as_database_error().and_then(|d| d.code()) {
        Some(code) if code == "23505" => {
            ApiError::Conflict(format!("an account with email {email} exists; log in"))
        }
        _ => e.into(),
    })?;
    let tokens = issue(&app, &mut tx, id, Role::Customer, None, false).await?;
    let verify = email::new_email_token(
        &app,
        &mut tx,
        id,
        email::Purpose::VerifyEmail,
        app.settings.auth.email_verification_ttl_secs,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %id, "account registered");
    app.mailer
        .send_later(crate::mail::AccountMail::verify_email(
            &app.settings,
            &email,
            &name,
            &verify,
        ));
    Ok((
        StatusCode::CREATED,
        axum::Json(Registered {
            user: profile(row),
            tokens,
        }),
    )
        .into_response())
}

/// Logs in with email and password. An account with two-factor authentication on
/// gets no tokens yet but a challenge that `POST /v1/auth/mfa` completes.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Tokens, or `{mfa_required: true, mfa_token, expires_in}` when the account has two-factor authentication on", body = LoginAnswer),
        (status = 401, description = "Wrong email or password (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins to this account or from this client, or too many requests from this client (problem+json, `Retry-After`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(app): State<AppState>,
    client: Option<axum::Extension<crate::ratelimit::login::ClientSubject>>,
    ApiJson(body): ApiJson<Login>,
) -> Result<axum::Json<LoginAnswer>, ApiError> {
    // Anything that is not a well-formed account can only fail, but through the same
    // password work, so the answer's timing does not tell which emails exist.
    let email = normalize_email(&body.email).ok();
    // Counted per target account before any password work (429 once spent).
    let attempt = match (&app.limiter, &email) {
        (Some(limiter), Some(e)) => {
            limiter
                .login_attempt(e, client.as_ref().map(|c| &c.0))
                .await?
        }
        _ => None,
    };
    let row: Option<(Uuid, String, String, bool)> = match &email {
        Some(e) if body.password.chars().count() <= MAX_PASSWORD_CHARS => {
            sqlx::query_as(
                "select id, password_hash, role, mfa_enabled_at is not null
               from users where email = $1",
            )
            .bind(e)
            .fetch_optional(&app.db)
            .await?
        }
        _ => None,
    };
    let Some((id, stored, role, mfa_on)) = row else {
        passwords::verify_unknown(body.password)
            .await
            .map_err(ApiError::Internal)?;
        return Err(ApiError::InvalidCredentials);
    };
    if !passwords::verify(body.password, stored)
        .await
        .map_err(ApiError::Internal)?
    {
        return Err(ApiError::InvalidCredentials);
    }
    if let Some(attempt) = attempt {
        attempt.succeeded().await;
    }
    if mfa_on {
        let challenge = mfa::challenge(&app, UserId(id)).await?;
        return Ok(axum::Json(LoginAnswer::Mfa(challenge)));
    }
    let mut tx = app.db.begin().await?;
    let tokens = issue(&app, &mut tx, UserId(id), parse_role(&role)?, None, false).await?;
    tx.commit().await?;
    Ok(axum::Json(LoginAnswer::Tokens(tokens)))
}

/// Exchanges a refresh token for a new pair; the presented token stops working.
/// Presenting a token that was already exchanged revokes its whole family.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenPair),
        (status = 401, description = "Unknown, expired, used or revoked refresh token (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refresh(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    if body.refresh_token.len() > MAX_TOKEN_CHARS {
        return Err(ApiError::InvalidRefreshToken);
    }
    let hash = token_hash(&body.refresh_token);
    let mut tx = app.db.begin().await?;
    // The row lock of this update serialises concurrent refreshes of one token:
    // exactly one finds it unused.
    let claimed: Option<(Uuid, Uuid, String, bool)> = sqlx::query_as(
        "update refresh_tokens r set used_at = now()
           from users u
          where r.token_hash = $1 and r.used_at is null and r.revoked_at is null
            and r.expires_at > now() and u.id = r.user_id
         returning r.user_id, r.family_id, u.role, r.mfa",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user, family, role, mfa)) = claimed else {
        tx.rollback().await?;
        revoke_if_reused(&app, &hash).await?;
        return Err(ApiError::InvalidRefreshToken);
    };
    let tokens = issue(
        &app,
        &mut tx,
        UserId(user),
        parse_role(&role)?,
        Some(family),
        mfa,
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(tokens))
}

/// A used token presented again: revoke its family.
async fn revoke_if_reused(app: &AppState, hash: &[u8]) -> Result<(), ApiError> {
    let revoked = sqlx::query(
        "update refresh_tokens set revoked_at = coalesce(revoked_at, now())
          where family_id = (select family_id from refresh_tokens
                              where token_hash = $1 and used_at is not null)",
    )
    .bind(hash)
    .execute(&app.db)
    .await?;
    if revoked.rows_affected() > 0 {
        tracing::warn!("a used refresh token was presented again; its family is revoked");
        metrics::counter!("refresh_token_reuse_total").increment(1);
    }
    Ok(())
}

/// Logs out: the refresh token's family stops working (access tokens expire on
/// their own). Unknown tokens are accepted too: the answer tells nothing.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Logged out"))
)]
pub async fn logout(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    if body.refresh_token.len() <= MAX_TOKEN_CHARS {
        sqlx::query(
            "update refresh_tokens set revoked_at = coalesce(revoked_at, now())
              where family_id = (select family_id from refresh_tokens where token_hash = $1)",
        )
        .bind(token_hash(&body.refresh_token))
        .execute(&app.db)
        .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
