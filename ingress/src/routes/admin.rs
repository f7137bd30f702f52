//! Theater admins schedule the catalog (API.md, "Admin"), role `admin` only:
//! theaters, their screens (seat layouts), movies, shows, and a show's sales.
//!
//! What a booking depends on is frozen once the show has one: a show's start and
//! prices, and its screen's layout, can change only while none of the screen's (or
//! the show's) live shows has a booking of any status. The sequencer loads a show's
//! layout and prices once and keeps them in memory, so changing them under existing
//! bookings would silently re-price or re-map seats; an admin cancels the show instead.
//!
//! Overlapping shows on a screen (the cleaning buffer included) are refused with a 409
//! naming the other show; the database's exclusion constraint `shows_no_overlap`
//! refuses what two concurrent requests might both have checked.

use crate::auth::{Caller, Role};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use crate::routes::bookings::rfc3339;
use crate::routes::catalog::{MovieView, ShowView, movie_view, show_view};
use crate::startup::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::{BookingStatus, Price, ScreenLayout, ShowStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

const MAX_NAME_CHARS: usize = 200;
const MAX_ADDRESS_CHARS: usize = 500;
const MAX_SYNOPSIS_CHARS: usize = 5000;
const MAX_LIST_ITEMS: usize = 50;
const MAX_DURATION_MIN: i32 = 600;
const MAX_PRICE: i64 = 1_000_000_000;
/// How far ahead a show may be scheduled.
const MAX_DAYS_AHEAD: i64 = 730;

fn admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require(&[Role::Admin])
}

/// A bounded, trimmed, non-empty text without control characters.
fn text(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let v = raw.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "{field} must be 1 to {max} characters, without control characters"
        )));
    }
    Ok(v.to_owned())
}

fn texts(field: &str, raw: &[String], max_each: usize) -> Result<Vec<String>, ApiError> {
    if raw.len() > MAX_LIST_ITEMS {
        return Err(ApiError::Validation(format!(
            "{field} holds at most {MAX_LIST_ITEMS} items"
        )));
    }
    raw.iter().map(|v| text(field, v, max_each)).collect()
}

fn optional_text(field: &str, raw: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    raw.map(|v| text(field, v, max)).transpose()
}

/// Maps the constraint violations an admin write can meet to answers.
fn db_conflict(e: sqlx::Error, what: &str) -> ApiError {
    match e.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("23505") => ApiError::Conflict(format!("{what} already exists")),
        Some("23P01") => ApiError::Conflict(
            "the screen already has a show at that time (cleaning buffer included)".into(),
        ),
        Some("23503") => ApiError::NotFound(format!("{what}: a referenced row does not exist")),
        _ => e.into(),
    }
}

/// The sort key of an id-ordered list (ids are UUIDv7: creation order).
#[derive(Debug, Serialize, Deserialize)]
struct IdCursor(Uuid);

// ---------------------------------------------------------------------------
// Theaters.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "PVR Phoenix", "city": "Mumbai", "address": "Lower Parel"}))]
pub struct TheaterInput {
    pub name: String,
    pub city: String,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"address": "High Street Phoenix, Lower Parel"}))]
pub struct TheaterChange {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Theater {
    pub id: Uuid,
    pub name: String,
    pub city: String,
    pub address: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TheaterQuery {
    /// Only theaters in this city (any case).
    pub city: Option<String>,
}

async fn theater(app: &AppState, id: Uuid) -> Result<Theater, ApiError> {
    sqlx::query_as("select id, name, city, address from theaters where id = $1")
        .bind(id)
        .fetch_optional(&app.db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("theater {id} does not exist")))
}

/// Adds a theater.
#[utoipa::path(post, path = "/v1/admin/theaters", tag = "admin", security(("bearer" = [])),
    request_body = TheaterInput,
    responses((status = 201, description = "The theater", body = Theater)))]
pub async fn create_theater(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TheaterInput>,
) -> Result<Response, ApiError> {
    admin(&caller)?;
    let t = Theater {
        id: Uuid::now_v7(),
        name: text("name", &body.name, MAX_NAME_CHARS)?,
        city: text("city", &body.city, MAX_NAME_CHARS)?,
        address: optional_text("address", body.address.as_deref(), MAX_ADDRESS_CHARS)?
            .unwrap_or_default(),
    };
    sqlx::query("insert into theaters (id, name, city, address) values ($1, $2, $3, $4)")
        .bind(t.id)
        .bind(&t.name)
        .bind(&t.city)
        .bind(&t.address)
        .execute(&app.db)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(t)).into_response())
}

/// Theaters, oldest first, optionally of one city.
#[utoipa::path(get, path = "/v1/admin/theaters", tag = "admin", security(("bearer" = [])),
    params(TheaterQuery, PageParams),
    responses((status = 200, description = "A page of theaters", body = Page<Theater>)))]
pub async fn list_theaters(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TheaterQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<Theater>>, ApiError> {
    admin(&caller)?;
    let limit = page.limit()?;
    let after = page.cursor::<IdCursor>()?.map(|c| c.0);
    let city = optional_text("city", q.city.as_deref(), MAX_NAME_CHARS)?;
    let rows: Vec<Theater> = sqlx::query_as(
        "select id, name, city, address from theaters
          where ($1::uuid is null or id > $1) and ($2::text is null or lower(city) = lower($2))
          order by id limit $3",
    )
    .bind(after)
    .bind(city)
    .bind(i64::from(limit) + 1)
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(Page::from_rows(rows, limit, |t| IdCursor(t.id))))
}

/// One theater.
#[utoipa::path(get, path = "/v1/admin/theaters/{theater_id}", tag = "admin", security(("bearer" = [])),
    params(("theater_id" = Uuid, Path, description = "The theater id")),
    responses((status = 200, description = "The theater", body = Theater)))]
pub async fn get_theater(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Theater>, ApiError> {
    admin(&caller)?;
    theater(&app, id).await.map(axum::Json)
}

/// Changes a theater's name, city or address.
#[utoipa::path(patch, path = "/v1/admin/theaters/{theater_id}", tag = "admin", security(("bearer" = [])),
    params(("theater_id" = Uuid, Path, description = "The theater id")),
    request_body = TheaterChange,
    responses((status = 200, description = "The theater", body = Theater)))]
pub async fn update_theater(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TheaterChange>,
) -> Result<axum::Json<Theater>, ApiError> {
    admin(&caller)?;
    let name = optional_text("name", body.name.as_deref(), MAX_NAME_CHARS)?;
    let city = optional_text("city", body.city.as_deref(), MAX_NAME_CHARS)?;
    let address = optional_text("address", body.address.as_deref(), MAX_ADDRESS_CHARS)?;
    sqlx::query(
        "update theaters set name = coalesce($2, name), city = coalesce($3, city),
                address = coalesce($4, address) where id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(city)
    .bind(address)
    .execute(&app.db)
    .await?;
    theater(&app, id).await.map(axum::Json)
}

// ---------------------------------------------------------------------------
// Screens.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Screen 2", "layout": {"rows": [
    {"row": "A", "seats": [{"number": 1, "type": "regular"}, {"number": 2, "type": "regular"}, {"number": 3, "type": "regular", "blocked": true}], "aisles_after": [1]},
    {"row": "B", "seats": [{"number": 1, "type": "premium"}, {"number": 2, "type": "premium"}]}
]}}))]
pub struct ScreenInput {
    pub name: String,
    pub layout: ScreenLayout,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"layout": {"rows": [{"row": "A", "seats": [{"number": 1, "type": "regular"}]}]}}))]
pub struct LayoutChange {
    pub layout: ScreenLayout,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Screen {
    pub id: Uuid,
    pub theater_id: Uuid,
    pub name: String,
    pub seat_count: i32,
    pub layout: ScreenLayout,
}

type ScreenRow = (Uuid, Uuid, String, i32, sqlx::types::Json<ScreenLayout>);

fn screen_of((id, theater_id, name, seat_count, layout): ScreenRow) -> Screen {
    Screen {
        id,
        theater_id,
        name,
        seat_count,
        layout: layout.0,
    }
}

async fn screen(app: &AppState, id: Uuid) -> Result<Screen, ApiError> {
    let row: Option<ScreenRow> = sqlx::query_as(
        "select id, theater_id, name, seat_count, layout from screens where id = $1",
    )
    .bind(id)
    .fetch_optional(&app.db)
    .await?;
    row.map(screen_of)
        .ok_or_else(|| ApiError::NotFound(format!("screen {id} does not exist")))
}

/// The layout's seat count, or a 422 with what is wrong with it.
fn checked_layout(layout: &ScreenLayout) -> Result<i32, ApiError> {
    layout
        .validate()
        .map_err(|e| ApiError::Validation(format!("layout: {e}")))?;
    i32::try_from(layout.seats().count())
        .map_err(|_| ApiError::Validation("layout: too many seats".into()))
}

/// Adds a screen with its seat layout to a theater.
#[utoipa::path(post, path = "/v1/admin/theaters/{theater_id}/screens", tag = "admin", security(("bearer" = [])),
    params(("theater_id" = Uuid, Path, description = "The theater id")),
    request_body = ScreenInput,
    responses(
        (status = 201, description = "The screen", body = Screen),
        (status = 409, description = "The theater has a screen of that name (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_screen(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(theater_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ScreenInput>,
) -> Result<Response, ApiError> {
    admin(&caller)?;
    let name = text("name", &body.name, MAX_NAME_CHARS)?;
    let seat_count = checked_layout(&body.layout)?;
    theater(&app, theater_id).await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into screens (id, theater_id, name, layout, seat_count) values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(theater_id)
    .bind(&name)
    .bind(sqlx::types::Json(&body.layout))
    .bind(seat_count)
    .execute(&app.db)
    .await
    .map_err(|e| db_conflict(e, &format!("screen {name:?} of this theater")))?;
    Ok((StatusCode::CREATED, axum::Json(screen(&app, id).await?)).into_response())
}

/// A theater's screens.
#[utoipa::path(get, path = "/v1/admin/theaters/{theater_id}/screens", tag = "admin", security(("bearer" = [])),
    params(("theater_id" = Uuid, Path, description = "The theater id")),
    responses((status = 200, description = "The screens", body = Vec<Screen>)))]
pub async fn list_screens(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(theater_id): ApiPath<Uuid>,
) -> Result<axum::Json<Vec<Screen>>, ApiError> {
    admin(&caller)?;
    theater(&app, theater_id).await?;
    let rows: Vec<ScreenRow> = sqlx::query_as(
        "select id, theater_id, name, seat_count, layout from screens
          where theater_id = $1 order by name, id",
    )
    .bind(theater_id)
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(rows.into_iter().map(screen_of).collect()))
}

/// One screen with its layout.
#[utoipa::path(get, path = "/v1/admin/screens/{screen_id}", tag = "admin", security(("bearer" = [])),
    params(("screen_id" = Uuid, Path, description = "The screen id")),
    responses((status = 200, description = "The screen", body = Screen)))]
pub async fn get_screen(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Screen>, ApiError> {
    admin(&caller)?;
    screen(&app, id).await.map(axum::Json)
}

/// Replaces a screen's layout: refused (409) once any live show of the screen has a
/// booking.
#[utoipa::path(put, path = "/v1/admin/screens/{screen_id}/layout", tag = "admin", security(("bearer" = [])),
    params(("screen_id" = Uuid, Path, description = "The screen id")),
    request_body = LayoutChange,
    responses(
        (status = 200, description = "The screen", body = Screen),
        (status = 409, description = "Shows of the screen have bookings (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace_layout(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<LayoutChange>,
) -> Result<axum::Json<Screen>, ApiError> {
    admin(&caller)?;
    let seat_count = checked_layout(&body.layout)?;
    let mut tx = app.db.begin().await?;
    // Locks the screen: a show cannot be scheduled on it meanwhile.
    let found: Option<Uuid> = sqlx::query_scalar("select id from screens where id = $1 for update")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    found.ok_or_else(|| ApiError::NotFound(format!("screen {id} does not exist")))?;
    let booked: Option<Uuid> = sqlx::query_scalar(
        "select s.id from shows s
          where s.screen_id = $1 and s.status <> 'cancelled'
            and exists (select 1 from bookings b where b.show_id = s.id)
          limit 1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(show) = booked {
        return Err(ApiError::Conflict(format!(
            "show {show} of this screen has bookings: its layout can no longer change (cancel the show first)"
        )));
    }
    sqlx::query("update screens set layout = $2, seat_count = $3 where id = $1")
        .bind(id)
        .bind(sqlx::types::Json(&body.layout))
        .bind(seat_count)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    screen(&app, id).await.map(axum::Json)
}

// ---------------------------------------------------------------------------
// Movies.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "The Queue Must Go On", "genres": ["drama"], "cast": ["Asha Rao"], "duration_min": 128, "rating": "UA", "language": "Hindi", "synopsis": "A ticket, a queue, a city."}))]
pub struct MovieInput {
    pub title: String,
    #[serde(default)]
    pub genres: Vec<String>,
    #[serde(default)]
    pub cast: Vec<String>,
    /// 1 to 600.
    pub duration_min: i32,
    #[serde(default)]
    pub rating: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub synopsis: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"synopsis": "A ticket, a queue, a city, and a sequencer."}))]
pub struct MovieChange {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub genres: Option<Vec<String>>,
    #[serde(default)]
    pub cast: Option<Vec<String>>,
    #[serde(default)]
    pub duration_min: Option<i32>,
    #[serde(default)]
    pub rating: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub synopsis: Option<String>,
}

fn check_duration(d: i32) -> Result<i32, ApiError> {
    if (1..=MAX_DURATION_MIN).contains(&d) {
        Ok(d)
    } else {
        Err(ApiError::Validation(format!(
            "duration_min must be 1 to {MAX_DURATION_MIN}"
        )))
    }
}

/// Adds a movie.
#[utoipa::path(post, path = "/v1/admin/movies", tag = "admin", security(("bearer" = [])),
    request_body = MovieInput,
    responses((status = 201, description = "The movie", body = MovieView)))]
pub async fn create_movie(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<MovieInput>,
) -> Result<Response, ApiError> {
    admin(&caller)?;
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into movies (id, title, genres, cast_members, duration_min, rating, language, synopsis)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(text("title", &body.title, MAX_NAME_CHARS)?)
    .bind(texts("genres", &body.genres, 40)?)
    .bind(texts("cast", &body.cast, MAX_NAME_CHARS)?)
    .bind(check_duration(body.duration_min)?)
    .bind(optional_text("rating", body.rating.as_deref(), 20)?)
    .bind(optional_text("language", body.language.as_deref(), 40)?)
    .bind(optional_text("synopsis", body.synopsis.as_deref(), MAX_SYNOPSIS_CHARS)?.unwrap_or_default())
    .execute(&app.db)
    .await?;
    Ok((StatusCode::CREATED, axum::Json(movie_view(&app, id).await?)).into_response())
}

/// Movies, oldest first.
#[utoipa::path(get, path = "/v1/admin/movies", tag = "admin", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "A page of movies", body = Page<MovieView>)))]
pub async fn list_movies(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<MovieView>>, ApiError> {
    admin(&caller)?;
    let limit = page.limit()?;
    let after = page.cursor::<IdCursor>()?.map(|c| c.0);
    let rows: Vec<MovieView> = sqlx::query_as(
        "select id, title, genres, cast_members as cast, duration_min, rating, language, synopsis
           from movies where ($1::uuid is null or id > $1) order by id limit $2",
    )
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(Page::from_rows(rows, limit, |m| IdCursor(m.id))))
}

/// One movie.
#[utoipa::path(get, path = "/v1/admin/movies/{movie_id}", tag = "admin", security(("bearer" = [])),
    params(("movie_id" = Uuid, Path, description = "The movie id")),
    responses((status = 200, description = "The movie", body = MovieView)))]
pub async fn get_movie(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<MovieView>, ApiError> {
    admin(&caller)?;
    movie_view(&app, id).await.map(axum::Json)
}

/// Changes a movie. Its duration is frozen once it has live shows (their end times
/// and the screens' schedules depend on it).
#[utoipa::path(patch, path = "/v1/admin/movies/{movie_id}", tag = "admin", security(("bearer" = [])),
    params(("movie_id" = Uuid, Path, description = "The movie id")),
    request_body = MovieChange,
    responses(
        (status = 200, description = "The movie", body = MovieView),
        (status = 409, description = "The duration of a movie with shows (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_movie(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<MovieChange>,
) -> Result<axum::Json<MovieView>, ApiError> {
    admin(&caller)?;
    movie_view(&app, id).await?;
    let duration = body.duration_min.map(check_duration).transpose()?;
    if duration.is_some() {
        let shows: Option<Uuid> = sqlx::query_scalar(
            "select id from shows where movie_id = $1 and status <> 'cancelled' limit 1",
        )
        .bind(id)
        .fetch_optional(&app.db)
        .await?;
        if let Some(show) = shows {
            return Err(ApiError::Conflict(format!(
                "the movie has shows (e.g. {show}): its duration can no longer change"
            )));
        }
    }
    sqlx::query(
        "update movies set title = coalesce($2, title), genres = coalesce($3, genres),
                cast_members = coalesce($4, cast_members), duration_min = coalesce($5, duration_min),
                rating = coalesce($6, rating), language = coalesce($7, language),
                synopsis = coalesce($8, synopsis)
          where id = $1",
    )
    .bind(id)
    .bind(optional_text("title", body.title.as_deref(), MAX_NAME_CHARS)?)
    .bind(body.genres.as_deref().map(|g| texts("genres", g, 40)).transpose()?)
    .bind(body.cast.as_deref().map(|c| texts("cast", c, MAX_NAME_CHARS)).transpose()?)
    .bind(duration)
    .bind(optional_text("rating", body.rating.as_deref(), 20)?)
    .bind(optional_text("language", body.language.as_deref(), 40)?)
    .bind(optional_text("synopsis", body.synopsis.as_deref(), MAX_SYNOPSIS_CHARS)?)
    .execute(&app.db)
    .await?;
    movie_view(&app, id).await.map(axum::Json)
}

// ---------------------------------------------------------------------------
// Shows.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"movie_id": "0193a000-0000-7000-8000-000000000010", "screen_id": "0193a000-0000-7000-8000-000000000011", "starts_at": "2026-12-01T13:30:00Z", "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}, {"seat_type": "premium", "amount": 35000, "currency": "INR"}]}))]
pub struct ShowInput {
    pub movie_id: Uuid,
    pub screen_id: Uuid,
    /// RFC 3339, in the future.
    pub starts_at: String,
    /// One price per seat type of the screen's layout, all in one currency.
    pub prices: Vec<Price>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"starts_at": "2026-12-01T16:30:00Z"}))]
pub struct ShowChange {
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub prices: Option<Vec<Price>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowListQuery {
    pub screen_id: Option<Uuid>,
    pub movie_id: Option<Uuid>,
}

fn parse_start(raw: &str) -> Result<OffsetDateTime, ApiError> {
    let t = OffsetDateTime::parse(raw.trim(), &Rfc3339).map_err(|_| {
        ApiError::Validation("starts_at must be an RFC 3339 time, e.g. 2026-12-01T13:30:00Z".into())
    })?;
    let now = OffsetDateTime::now_utc();
    if t <= now || t > now + time::Duration::days(MAX_DAYS_AHEAD) {
        return Err(ApiError::Validation(format!(
            "starts_at must be in the future and at most {MAX_DAYS_AHEAD} days ahead"
        )));
    }
    Ok(t)
}

/// Prices must name exactly the layout's seat types, in one currency.
fn check_prices(prices: &[Price], layout: &ScreenLayout) -> Result<(), ApiError> {
    let types: BTreeSet<&str> = layout.seats().map(|(_, s)| s.seat_type.as_str()).collect();
    let priced: BTreeSet<&str> = prices.iter().map(|p| p.seat_type.as_str()).collect();
    if priced.len() != prices.len() {
        return Err(ApiError::Validation("each seat type is priced once".into()));
    }
    if priced != types {
        return Err(ApiError::Validation(format!(
            "prices must cover exactly the screen's seat types {types:?}"
        )));
    }
    let currencies: BTreeSet<&str> = prices.iter().map(|p| p.currency.as_str()).collect();
    let currency_ok = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
    if currencies.len() != 1 || !currencies.iter().all(|c| currency_ok(c)) {
        return Err(ApiError::Validation(
            "prices use one ISO 4217 currency, e.g. INR".into(),
        ));
    }
    if prices.iter().any(|p| !(0..=MAX_PRICE).contains(&p.amount)) {
        return Err(ApiError::Validation(format!(
            "amounts are minor units from 0 to {MAX_PRICE}"
        )));
    }
    Ok(())
}

/// The other live show on `screen` whose busy time overlaps `[start, busy_until)`.
async fn overlapping(
    tx: &mut sqlx::PgConnection,
    screen: Uuid,
    start: OffsetDateTime,
    busy_until: OffsetDateTime,
    except: Uuid,
) -> Result<Option<(Uuid, OffsetDateTime)>, ApiError> {
    Ok(sqlx::query_as(
        "select id, starts_at from shows
          where screen_id = $1 and status <> 'cancelled' and id <> $4
            and tstzrange(starts_at, coalesce(busy_until, ends_at)) && tstzrange($2, $3)
          limit 1",
    )
    .bind(screen)
    .bind(start)
    .bind(busy_until)
    .bind(except)
    .fetch_optional(tx)
    .await?)
}

/// The show's schedule: (ends_at, busy_until) for a start and a movie duration.
fn schedule(
    app: &AppState,
    start: OffsetDateTime,
    duration_min: i32,
) -> (OffsetDateTime, OffsetDateTime) {
    let ends = start + time::Duration::minutes(i64::from(duration_min));
    let busy = ends + time::Duration::minutes(i64::from(app.settings.catalog.cleaning_buffer_min));
    (ends, busy)
}

fn overlap_error(other: Uuid, at: OffsetDateTime) -> ApiError {
    ApiError::Conflict(format!(
        "the screen is busy then: show {other} starts at {} (the cleaning buffer included)",
        rfc3339(at)
    ))
}

async fn write_prices(
    tx: &mut sqlx::PgConnection,
    show: Uuid,
    prices: &[Price],
) -> Result<(), ApiError> {
    sqlx::query("delete from show_prices where show_id = $1")
        .bind(show)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into show_prices (show_id, seat_type, amount, currency)
         select $1, * from unnest($2::text[], $3::bigint[], $4::text[])",
    )
    .bind(show)
    .bind(
        prices
            .iter()
            .map(|p| p.seat_type.clone())
            .collect::<Vec<_>>(),
    )
    .bind(prices.iter().map(|p| p.amount).collect::<Vec<_>>())
    .bind(
        prices
            .iter()
            .map(|p| p.currency.clone())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Schedules a show, on sale at once. Overlapping another live show of the screen,
/// the cleaning buffer included, is a 409.
#[utoipa::path(post, path = "/v1/admin/shows", tag = "admin", security(("bearer" = [])),
    request_body = ShowInput,
    responses(
        (status = 201, description = "The show", body = ShowView),
        (status = 409, description = "The screen is busy then (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_show(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ShowInput>,
) -> Result<Response, ApiError> {
    admin(&caller)?;
    let start = parse_start(&body.starts_at)?;
    let movie = movie_view(&app, body.movie_id).await?;
    let screen = screen(&app, body.screen_id).await?;
    check_prices(&body.prices, &screen.layout)?;
    let (ends, busy) = schedule(&app, start, movie.duration_min);
    let id = Uuid::now_v7();
    let mut tx = app.db.begin().await?;
    if let Some((other, at)) = overlapping(&mut tx, screen.id, start, busy, id).await? {
        return Err(overlap_error(other, at));
    }
    sqlx::query(
        "insert into shows (id, movie_id, screen_id, starts_at, ends_at, busy_until, status)
         values ($1, $2, $3, $4, $5, $6, 'on_sale')",
    )
    .bind(id)
    .bind(movie.id)
    .bind(screen.id)
    .bind(start)
    .bind(ends)
    .bind(busy)
    .execute(&mut *tx)
    .await
    .map_err(|e| db_conflict(e, "the show"))?;
    write_prices(&mut tx, id, &body.prices).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(show_view(&app, id).await?)).into_response())
}

/// Shows by start time, optionally of one screen or movie.
#[utoipa::path(get, path = "/v1/admin/shows", tag = "admin", security(("bearer" = [])),
    params(ShowListQuery, PageParams),
    responses((status = 200, description = "A page of show ids with their start", body = Page<ShowListItem>)))]
pub async fn list_shows(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ShowListQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<ShowListItem>>, ApiError> {
    admin(&caller)?;
    let limit = page.limit()?;
    let after = page
        .cursor::<StartCursor>()?
        .map(|StartCursor(us, id)| crate::pagination::from_unix_micros(us).map(|t| (t, id)))
        .transpose()?;
    let rows: Vec<(Uuid, Uuid, Uuid, OffsetDateTime, String)> = sqlx::query_as(
        "select id, movie_id, screen_id, starts_at, status from shows
          where ($1::uuid is null or screen_id = $1) and ($2::uuid is null or movie_id = $2)
            and ($3::timestamptz is null or (starts_at, id) > ($3, $4))
          order by starts_at, id limit $5",
    )
    .bind(q.screen_id)
    .bind(q.movie_id)
    .bind(after.map(|(t, _)| t))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(i64::from(limit) + 1)
    .fetch_all(&app.db)
    .await?;
    let page = Page::from_rows(rows, limit, |r| {
        StartCursor(crate::pagination::unix_micros(r.3), r.0)
    });
    Ok(axum::Json(page.map(
        |(id, movie_id, screen_id, starts, status)| ShowListItem {
            id,
            movie_id,
            screen_id,
            starts_at: rfc3339(starts),
            status,
        },
    )))
}

#[derive(Debug, Serialize, Deserialize)]
struct StartCursor(i64, Uuid);

#[derive(Debug, Serialize, ToSchema)]
pub struct ShowListItem {
    pub id: Uuid,
    pub movie_id: Uuid,
    pub screen_id: Uuid,
    pub starts_at: String,
    pub status: String,
}

/// One show.
#[utoipa::path(get, path = "/v1/admin/shows/{show_id}", tag = "admin", security(("bearer" = [])),
    params(("show_id" = Uuid, Path, description = "The show id")),
    responses((status = 200, description = "The show", body = ShowView)))]
pub async fn get_show(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<ShowView>, ApiError> {
    admin(&caller)?;
    show_view(&app, id).await.map(axum::Json)
}

/// Moves a show or changes its prices: only before it has any booking.
#[utoipa::path(patch, path = "/v1/admin/shows/{show_id}", tag = "admin", security(("bearer" = [])),
    params(("show_id" = Uuid, Path, description = "The show id")),
    request_body = ShowChange,
    responses(
        (status = 200, description = "The show", body = ShowView),
        (status = 409, description = "The show has bookings, or the new time overlaps (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_show(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ShowChange>,
) -> Result<axum::Json<ShowView>, ApiError> {
    admin(&caller)?;
    let start = body.starts_at.as_deref().map(parse_start).transpose()?;
    let mut tx = app.db.begin().await?;
    let row: Option<(Uuid, i32, String)> = sqlx::query_as(
        "select s.screen_id, m.duration_min, s.status from shows s join movies m on m.id = s.movie_id
          where s.id = $1 for update of s",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let (screen_id, duration, status) =
        row.ok_or_else(|| ApiError::NotFound(format!("show {id} does not exist")))?;
    if platform::db::parse_text::<ShowStatus>(&status)? == ShowStatus::Cancelled {
        return Err(ApiError::Conflict(format!("show {id} is cancelled")));
    }
    let booked: bool =
        sqlx::query_scalar("select exists (select 1 from bookings where show_id = $1)")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if booked {
        return Err(ApiError::Conflict(format!(
            "show {id} has bookings: its time and prices can no longer change (cancel it instead)"
        )));
    }
    if let Some(prices) = &body.prices {
        check_prices(prices, &screen(&app, screen_id).await?.layout)?;
        write_prices(&mut tx, id, prices).await?;
    }
    if let Some(start) = start {
        let (ends, busy) = schedule(&app, start, duration);
        if let Some((other, at)) = overlapping(&mut tx, screen_id, start, busy, id).await? {
            return Err(overlap_error(other, at));
        }
        sqlx::query("update shows set starts_at = $2, ends_at = $3, busy_until = $4 where id = $1")
            .bind(id)
            .bind(start)
            .bind(ends)
            .bind(busy)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_conflict(e, "the show"))?;
    }
    tx.commit().await?;
    show_view(&app, id).await.map(axum::Json)
}

// ---------------------------------------------------------------------------
// Sales.

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct SeatCounts {
    pub capacity: u32,
    /// Seats of confirmed bookings.
    pub sold: u32,
    /// Seats of held or payment-pending bookings.
    pub held: u32,
    pub free: u32,
    /// Seats the layout never sells.
    pub blocked: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeSales {
    pub seat_type: String,
    #[serde(flatten)]
    pub seats: SeatCounts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revenue {
    /// Minor units: the amounts of confirmed bookings.
    pub amount: i64,
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Sales {
    pub show_id: Uuid,
    #[serde(flatten)]
    pub seats: SeatCounts,
    pub revenue: Revenue,
    pub by_seat_type: Vec<TypeSales>,
}

impl SeatCounts {
    fn add(&mut self, state: Option<BookingStatus>, blocked: bool) {
        self.capacity += 1;
        match state {
            Some(BookingStatus::Confirmed) => self.sold += 1,
            Some(_) => self.held += 1,
            None if blocked => self.blocked += 1,
            None => self.free += 1,
        }
    }
}

/// A show's sold, held, free and blocked seats, in all and by seat type, and its
/// revenue so far.
#[utoipa::path(get, path = "/v1/admin/shows/{show_id}/sales", tag = "admin", security(("bearer" = [])),
    params(("show_id" = Uuid, Path, description = "The show id")),
    responses((status = 200, description = "The sales", body = Sales)))]
pub async fn sales(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Sales>, ApiError> {
    admin(&caller)?;
    let show = platform::catalog::load_show(&app.db, contracts::ShowId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("show {id} does not exist")))?;
    let live: HashMap<String, BookingStatus> = sqlx::query_as::<_, (String, String)>(
        "select bs.seat_id, b.status from booking_seats bs join bookings b on b.id = bs.booking_id
          where bs.show_id = $1 and bs.released_at is null",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await?
    .into_iter()
    .map(|(seat, status)| Ok((seat, platform::db::parse_text(&status)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let (amount, currency): (Option<i64>, Option<String>) = sqlx::query_as(
        "select sum(amount)::bigint, max(currency) from bookings where show_id = $1 and status = 'confirmed'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await?;
    let mut all = SeatCounts::default();
    let mut by_type: BTreeMap<String, SeatCounts> = BTreeMap::new();
    for (seat, s) in show.layout.seats() {
        let state = live.get(seat.as_str()).copied();
        all.add(state, s.blocked);
        by_type
            .entry(s.seat_type.clone())
            .or_default()
            .add(state, s.blocked);
    }
    Ok(axum::Json(Sales {
        show_id: id,
        seats: all,
        revenue: Revenue {
            amount: amount.unwrap_or(0),
            currency: currency.or_else(|| show.prices.first().map(|p| p.currency.clone())),
        },
        by_seat_type: by_type
            .into_iter()
            .map(|(seat_type, seats)| TypeSales { seat_type, seats })
            .collect(),
    }))
}

// ---------------------------------------------------------------------------
// Cancelling a show.

#[derive(Debug, Serialize, ToSchema)]
pub struct ShowCancelled {
    pub show_id: Uuid,
    /// `cancelled`: no more sales; its bookings are being released and refunded.
    pub status: &'static str,
}

/// Cancels a show before it starts: it stops selling at once, held bookings are
/// released, and every paid booking is cancelled and refunded in full (the refunds
/// run through the payment saga; each booking's status shows its progress).
/// Repeating it is harmless.
///
/// The show's row is marked first, then the command goes through the show's
/// partition queue, so the sequencer ends every booking decided before it and
/// refuses every hold after it; a sequencer that reloads the show finds it
/// cancelled. If publishing fails the answer is 503 and a retry finishes the job.
#[utoipa::path(post, path = "/v1/admin/shows/{show_id}/cancel", tag = "admin", security(("bearer" = [])),
    params(("show_id" = Uuid, Path, description = "The show id")),
    responses(
        (status = 202, description = "Cancelled; refunds are under way", body = ShowCancelled),
        (status = 409, description = "The show has started (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_show(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    admin(&caller)?;
    let row: Option<(String, OffsetDateTime)> =
        sqlx::query_as("select status, starts_at from shows where id = $1")
            .bind(id)
            .fetch_optional(&app.db)
            .await?;
    let (status, starts_at) =
        row.ok_or_else(|| ApiError::NotFound(format!("show {id} does not exist")))?;
    let status: ShowStatus = platform::db::parse_text(&status)?;
    if status != ShowStatus::Cancelled && starts_at <= OffsetDateTime::now_utc() {
        return Err(ApiError::Conflict(format!(
            "show {id} has started: it can no longer be cancelled"
        )));
    }
    sqlx::query("update shows set status = 'cancelled' where id = $1")
        .bind(id)
        .execute(&app.db)
        .await?;
    let show = contracts::ShowId(id);
    let env = contracts::CommandEnvelope::new(
        contracts::MessageId::for_show(show, "cancel-show"),
        show,
        platform::now_millis(),
        contracts::Command::CancelShow {
            reason: "show_cancelled".to_owned(),
        },
    )
    .with_trace(platform::trace::current());
    app.commands
        .send(&env)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    tracing::warn!(show_id = %id, user_id = %caller.user_id, "show cancelled by an admin");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ShowCancelled {
            show_id: id,
            status: "cancelled",
        }),
    )
        .into_response())
}

/// `/v1/admin/...`
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_theater, list_theaters))
        .routes(routes!(get_theater, update_theater))
        .routes(routes!(create_screen, list_screens))
        .routes(routes!(get_screen))
        .routes(routes!(replace_layout))
        .routes(routes!(create_movie, list_movies))
        .routes(routes!(get_movie, update_movie))
        .routes(routes!(create_show, list_shows))
        .routes(routes!(get_show, update_show))
        .routes(routes!(sales))
        .routes(routes!(cancel_show))
}
