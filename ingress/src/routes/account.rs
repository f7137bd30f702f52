//! Accounts (API.md, "Auth and profile"): registration, login, refresh-token
//! rotation with reuse detection, logout, the caller's profile and bookings.
//!
//! Access tokens are short-lived JWTs ([`crate::auth::TokenKeys`]). Refresh tokens are
//! 32 random bytes; only their SHA-256 is stored. A login starts a *family*; each
//! refresh marks the presented token used and issues the next one of the family in
//! the same transaction. Presenting a token that was already used means two parties
//! hold it (a thief replaying it, or the client after the thief): the whole family
//! is revoked, so the newer token in the thief's hands dies too, and both must log
//! in again.

use crate::auth::{Caller, Role};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{Page, PageParams, from_unix_micros, unix_micros};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::timefmt::rfc3339;
use ::auth::passwords;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contracts::{BookingStatus, UserId};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_CHARS: usize = 128;
const MAX_NAME_CHARS: usize = 100;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_CITY_CHARS: usize = 100;
const MAX_GENRES: usize = 20;
const MAX_GENRE_CHARS: usize = 40;
/// Longest refresh token accepted (ours are 43 characters).
const MAX_REFRESH_TOKEN_CHARS: usize = 128;

// ---------------------------------------------------------------------------
// Wire types.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "asha@example.com", "password": "correct horse battery", "name": "Asha Rao", "phone": "+919812345678"}))]
pub struct Register {
    pub email: String,
    /// 8 to 128 characters.
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

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The city the client opens on.
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub genres: Vec<String>,
}

/// The caller's profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    /// `customer`, `admin` or `operator`.
    pub role: String,
    pub preferences: Preferences,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub user: Profile,
    #[serde(flatten)]
    pub tokens: TokenPair,
}

/// `PATCH /v1/me`: any of the fields; `phone: null` removes the phone, and
/// `preferences` replaces the stored preferences as a whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Asha R.", "preferences": {"city": "Pune", "genres": ["drama", "thriller"]}}))]
pub struct ProfileChange {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default)]
    pub preferences: Option<Preferences>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A booking in the caller's list.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyBooking {
    pub booking_id: Uuid,
    pub show_id: Uuid,
    pub status: BookingStatus,
    pub seats: Vec<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The show, while it exists.
    pub show: Option<MyBookingShow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MyBookingShow {
    pub starts_at: String,
    /// `starts_at` on the theater's clock (RFC 3339 with its offset).
    pub starts_at_local: String,
    /// The theater's IANA time zone.
    pub time_zone: String,
    pub movie_title: String,
}

// ---------------------------------------------------------------------------
// Validation.

/// Trimmed and lower-cased; one `@` with text on both sides and a dot in the domain.
fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(ApiError::Validation(format!(
            "email must be an address like name@example.com (at most {MAX_EMAIL_CHARS} characters)"
        )))
    }
}

fn check_password(p: &str) -> Result<(), ApiError> {
    let n = p.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) && !p.contains('\0') {
        Ok(())
    } else {
        Err(ApiError::Validation(format!(
            "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )))
    }
}

/// A bounded, trimmed, non-empty text without control characters.
fn clean_text(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let v = raw.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "{field} must be 1 to {max} characters, without control characters"
        )));
    }
    Ok(v.to_owned())
}

fn check_phone(raw: &str) -> Result<String, ApiError> {
    let digits = raw.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::Validation(
            "phone must be + and 7 to 15 digits (E.164), e.g. +919812345678".into(),
        ))
    }
}

fn check_preferences(p: Preferences) -> Result<Preferences, ApiError> {
    let city = p
        .city
        .map(|c| clean_text("preferences.city", &c, MAX_CITY_CHARS))
        .transpose()?;
    if p.genres.len() > MAX_GENRES {
        return Err(ApiError::Validation(format!(
            "preferences.genres holds at most {MAX_GENRES} genres"
        )));
    }
    let genres = p
        .genres
        .iter()
        .map(|g| clean_text("each genre", g, MAX_GENRE_CHARS))
        .collect::<Result<_, _>>()?;
    Ok(Preferences { city, genres })
}

// ---------------------------------------------------------------------------
// Tokens.

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Issues an access token and the next refresh token of `family` (a new family
/// when `None`), inside `tx`.
async fn issue(
    app: &AppState,
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    role: Role,
    family: Option<Uuid>,
) -> Result<TokenPair, ApiError> {
    let refresh = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let ttl = i64::try_from(app.settings.auth.refresh_token_ttl_secs).unwrap_or(i64::MAX);
    sqlx::query(
        "insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at)
         values ($1, $2, $3, $4, now() + make_interval(secs => $5))",
    )
    .bind(Uuid::now_v7())
    .bind(user.0)
    .bind(family.unwrap_or_else(Uuid::now_v7))
    .bind(token_hash(&refresh))
    .bind(ttl as f64)
    .execute(&mut **tx)
    .await?;
    let access_token = app
        .tokens
        .mint(user, role)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(TokenPair {
        access_token,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: app.settings.auth.access_token_ttl_secs,
    })
}

fn parse_role(role: &str) -> Result<Role, ApiError> {
    role.parse()
        .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))
}

type ProfileRow = (
    Uuid,
    String,
    String,
    Option<String>,
    String,
    serde_json::Value,
);

fn profile((id, email, name, phone, role, prefs): ProfileRow) -> Profile {
    Profile {
        id: UserId(id),
        email,
        name,
        phone,
        role,
        preferences: serde_json::from_value(prefs).unwrap_or_default(),
    }
}

const PROFILE_COLUMNS: &str = "id, email, name, phone, role, preferences";

// ---------------------------------------------------------------------------
// Handlers.

/// Creates a customer account and logs it in.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "auth",
    request_body = Register,
    responses(
        (status = 201, description = "The account and its first tokens", body = Registered),
        (status = 409, description = "An account with this email exists (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<Register>,
) -> Result<Response, ApiError> {
    let email = normalize_email(&body.email)?;
    check_password(&body.password)?;
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
    let tokens = issue(&app, &mut tx, id, Role::Customer, None).await?;
    tx.commit().await?;
    tracing::info!(user_id = %id, "account registered");
    Ok((
        StatusCode::CREATED,
        axum::Json(Registered {
            user: profile(row),
            tokens,
        }),
    )
        .into_response())
}

/// Logs in with email and password.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Tokens", body = TokenPair),
        (status = 401, description = "Wrong email or password (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins to this account, or too many requests from this client (problem+json, `Retry-After`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<Login>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    // Anything that is not a well-formed account can only fail, but through the same
    // password work, so the answer's timing does not tell which emails exist.
    let email = normalize_email(&body.email).ok();
    // Counted per target account before any password work (429 once spent).
    let attempt = match (&app.limiter, &email) {
        (Some(limiter), Some(e)) => limiter.login_attempt(e).await?,
        _ => None,
    };
    let row: Option<(Uuid, String, String)> = match &email {
        Some(e) if body.password.chars().count() <= MAX_PASSWORD_CHARS => {
            sqlx::query_as("select id, password_hash, role from users where email = $1")
                .bind(e)
                .fetch_optional(&app.db)
                .await?
        }
        _ => None,
    };
    let Some((id, stored, role)) = row else {
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
    let mut tx = app.db.begin().await?;
    let tokens = issue(&app, &mut tx, UserId(id), parse_role(&role)?, None).await?;
    tx.commit().await?;
    Ok(axum::Json(tokens))
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
    if body.refresh_token.len() > MAX_REFRESH_TOKEN_CHARS {
        return Err(ApiError::InvalidRefreshToken);
    }
    let hash = token_hash(&body.refresh_token);
    let mut tx = app.db.begin().await?;
    // The row lock of this update serialises concurrent refreshes of one token:
    // exactly one finds it unused.
    let claimed: Option<(Uuid, Uuid, String)> = sqlx::query_as(
        "update refresh_tokens r set used_at = now()
           from users u
          where r.token_hash = $1 and r.used_at is null and r.revoked_at is null
            and r.expires_at > now() and u.id = r.user_id
         returning r.user_id, r.family_id, u.role",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user, family, role)) = claimed else {
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
    if body.refresh_token.len() <= MAX_REFRESH_TOKEN_CHARS {
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

async fn load_profile(app: &AppState, user: UserId) -> Result<Profile, ApiError> {
    let row: Option<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PROFILE_COLUMNS} from users where id = $1"
    )))
    .bind(user.0)
    .fetch_optional(&app.db)
    .await?;
    row.map(profile)
        .ok_or_else(|| ApiError::NotFound("this account no longer exists".into()))
}

/// The caller's profile.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 404, description = "The account no longer exists (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn me(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Profile>, ApiError> {
    Ok(axum::Json(load_profile(&app, caller.user_id).await?))
}

/// Changes the caller's name, phone or preferences.
#[utoipa::path(
    patch,
    path = "/v1/me",
    tag = "auth",
    security(("bearer" = [])),
    request_body = ProfileChange,
    responses(
        (status = 200, description = "The updated profile", body = Profile),
        (status = 404, description = "The account no longer exists (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_me(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ProfileChange>,
) -> Result<axum::Json<Profile>, ApiError> {
    let name = body
        .name
        .map(|n| clean_text("name", &n, MAX_NAME_CHARS))
        .transpose()?;
    let phone = match body.phone {
        None => None,
        Some(None) => Some(None),
        Some(Some(p)) => Some(Some(check_phone(&p)?)),
    };
    let preferences = body
        .preferences
        .map(check_preferences)
        .transpose()?
        .map(|p| serde_json::to_value(p).unwrap_or_default());
    let updated = sqlx::query(
        "update users set name = coalesce($2, name),
                          phone = case when $3 then $4 else phone end,
                          preferences = coalesce($5, preferences)
          where id = $1",
    )
    .bind(caller.user_id.0)
    .bind(name)
    .bind(phone.is_some())
    .bind(phone.flatten())
    .bind(preferences)
    .execute(&app.db)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ApiError::NotFound("this account no longer exists".into()));
    }
    Ok(axum::Json(load_profile(&app, caller.user_id).await?))
}

/// The sort key of the last booking of a page: (created_at in unix microseconds, id).
#[derive(Debug, Serialize, Deserialize)]
struct CreatedCursor(i64, Uuid);

type MyBookingRow = (
    Uuid,
    Uuid,
    String,
    Vec<String>,
    i64,
    Option<String>,
    OffsetDateTime,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<String>,
    Option<String>,
);

fn my_booking(r: MyBookingRow) -> Result<MyBooking, ApiError> {
    let (id, show, status, seats, amount, currency, created, updated, starts, title, zone) = r;
    Ok(MyBooking {
        booking_id: id,
        show_id: show,
        status: status
            .parse()
            .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?,
        seats,
        amount: currency.is_some().then_some(amount),
        currency,
        created_at: rfc3339(created),
        updated_at: rfc3339(updated),
        show: starts
            .zip(title)
            .zip(zone)
            .map(|((s, t), zone)| MyBookingShow {
                starts_at: rfc3339(s),
                starts_at_local: platform::localtime::local_rfc3339(s, &zone),
                time_zone: zone,
                movie_title: t,
            }),
    })
}

/// The caller's bookings, newest first. Bookings still only queued (not yet decided
/// by the sequencer) appear once decided, a moment later.
#[utoipa::path(
    get,
    path = "/v1/me/bookings",
    tag = "auth",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "A page of bookings", body = Page<MyBooking>))
)]
pub async fn my_bookings(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<MyBooking>>, ApiError> {
    let limit = page.limit()?;
    let after = page
        .cursor::<CreatedCursor>()?
        .map(|CreatedCursor(us, id)| from_unix_micros(us).map(|t| (t, id)))
        .transpose()?;
    let rows: Vec<MyBookingRow> = sqlx::query_as(
        "select b.id, b.show_id, b.status, b.seats, b.amount, b.currency, b.created_at,
                b.updated_at, s.starts_at, m.title, t.time_zone
           from bookings b
           left join shows s on s.id = b.show_id
           left join movies m on m.id = s.movie_id
           left join screens sc on sc.id = s.screen_id
           left join theaters t on t.id = sc.theater_id
          where b.user_id = $1
            and ($2::timestamptz is null or (b.created_at, b.id) < ($2, $3))
          order by b.created_at desc, b.id desc
          limit $4",
    )
    .bind(caller.user_id.0)
    .bind(after.map(|(t, _)| t))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(i64::from(limit) + 1)
    .fetch_all(&app.db)
    .await?;
    let page = Page::from_rows(rows, limit, |r| CreatedCursor(unix_micros(r.6), r.0));
    Ok(axum::Json(Page {
        items: page
            .items
            .into_iter()
            .map(my_booking)
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    }))
}

/// `/v1/auth/...` and `/v1/me...`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me, update_me))
        .routes(routes!(my_bookings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Asha.Rao@Example.COM ").unwrap(),
            "asha.rao@example.com"
        );
        for bad in [
            "",
            "asha",
            "@example.com",
            "asha@",
            "asha@example",
            "a b@example.com",
            "a@b@c.com",
            "asha@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn phones_passwords_and_preferences_are_bounded() {
        assert!(check_phone("+919812345678").is_ok());
        for bad in [
            "919812345678",
            "+12",
            "+1234567890123456",
            "+91 98123",
            "+91abc4567",
        ] {
            assert!(check_phone(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_password("12345678").is_ok());
        assert!(check_password("1234567").is_err());
        assert!(check_password(&"x".repeat(129)).is_err());
        let many = Preferences {
            city: None,
            genres: (0..21).map(|i| format!("g{i}")).collect(),
        };
        assert!(check_preferences(many).is_err());
        let ok = check_preferences(Preferences {
            city: Some("  Pune ".into()),
            genres: vec!["drama".into()],
        })
        .unwrap();
        assert_eq!(ok.city.as_deref(), Some("Pune"));
    }

    #[test]
    fn a_refresh_token_is_stored_only_as_its_sha256() {
        let h = token_hash("abc");
        assert_eq!(h.len(), 32);
        assert_eq!(
            hex::encode(h),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
