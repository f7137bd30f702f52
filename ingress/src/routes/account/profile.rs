//! The caller's profile (`GET`/`PATCH /v1/me`) and bookings (`GET /v1/me/bookings`).

use super::{MAX_NAME_CHARS, check_phone, check_preferences, clean_text};
use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{Page, PageParams, from_unix_micros, unix_micros};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::timefmt::rfc3339;
use axum::extract::State;
use contracts::{BookingStatus, UserId};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The city the client opens on.
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub genres: Vec<String>,
    /// How booking notifications reach the account: `["email"]` (the default),
    /// `["sms"]` or `["email", "sms"]`. SMS go only to a verified phone
    /// (`POST /v1/me/phone/verify`).
    #[serde(default = "default_notify")]
    #[schema(example = json!(["email", "sms"]))]
    pub notify: Vec<Channel>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            city: None,
            genres: vec![],
            notify: default_notify(),
        }
    }
}

/// A way booking notifications reach the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

pub(super) fn default_notify() -> Vec<Channel> {
    vec![Channel::Email]
}

/// The caller's profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    /// Whether `phone` was confirmed with an SMS code (changing it un-verifies it).
    pub phone_verified: bool,
    /// `customer`, `admin` or `operator`.
    pub role: String,
    pub preferences: Preferences,
    /// Whether the emailed verification link was followed.
    pub email_verified: bool,
    /// Whether sign-in asks for a TOTP code (two-factor authentication is on).
    pub mfa_enabled: bool,
}

/// `PATCH /v1/me`: any of the fields; `phone: null` removes the phone (a changed
/// phone is no longer verified), and `preferences` replaces the stored preferences
/// as a whole.
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

pub(super) type ProfileRow = (
    Uuid,
    String,
    String,
    Option<String>,
    String,
    serde_json::Value,
    bool,
    bool,
    bool,
);

pub(super) fn profile(
    (id, email, name, phone, role, prefs, email_verified, mfa_enabled, phone_verified): ProfileRow,
) -> Profile {
    Profile {
        id: UserId(id),
        email,
        name,
        phone,
        phone_verified,
        role,
        preferences: serde_json::from_value(prefs).unwrap_or_default(),
        email_verified,
        mfa_enabled,
    }
}

pub(super) const PROFILE_COLUMNS: &str = "id, email, name, phone, role, preferences, \
     email_verified_at is not null, mfa_enabled_at is not null, \
     phone is not null and phone_verified_at is not null";

pub(super) async fn load_profile(app: &AppState, user: UserId) -> Result<Profile, ApiError> {
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
                          phone_verified_at = case when $3 and $4 is distinct from phone
                                                   then null else phone_verified_at end,
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
