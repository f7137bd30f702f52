//! Browsing, search and live seat maps (API.md, "Catalog"); no token needed.
//!
//! Lists are keyset-paginated and built with only the filters given, so each
//! query shape gets its own plan. Movie lists are memoised for a moment
//! ([`crate::memo`]); seat maps come from Redis, where the sequencer runner writes
//! them after each commit, and are rebuilt from PostgreSQL when missing.

use crate::extract::{ApiPath, ApiQuery};
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use crate::startup::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use contracts::{Price, ShowId};
use platform::seatmap::{self, SeatMap};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use std::collections::HashSet;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Longest search text, city and genre accepted (characters).
const MAX_Q_CHARS: usize = 100;
const MAX_CITY_CHARS: usize = 100;
const MAX_GENRE_CHARS: usize = 40;
/// Rank bonus of a title equal to the search text, so the exact title comes first.
const EXACT_TITLE_BONUS: f64 = 10.0;

// ---------------------------------------------------------------------------
// Filters, parsed at the edge.

/// `?city=&date=&genre=&q=` of `GET /v1/movies`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovieQuery {
    /// City of the theater, case-insensitive (at most 100 characters).
    pub city: Option<String>,
    /// A calendar day `YYYY-MM-DD`, in UTC, on which a show starts.
    pub date: Option<String>,
    /// One of the movie's genres, exactly (at most 40 characters).
    pub genre: Option<String>,
    /// Text search over title and cast, typo-tolerant (at most 100 characters).
    pub q: Option<String>,
}

/// `?city=&date=` of `GET /v1/movies/{movie_id}/shows`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowQuery {
    /// City of the theater, case-insensitive (at most 100 characters).
    pub city: Option<String>,
    /// A calendar day `YYYY-MM-DD`, in UTC, on which the show starts.
    pub date: Option<String>,
}

/// The movie lists memoised by [`crate::memo::Memo`].
pub type MovieLists = crate::memo::Memo<MovieListKey, std::sync::Arc<Page<MovieSummary>>>;

/// The movies with upcoming on-sale shows matching a [`ShowFilter`]: the expensive
/// part of a movie list (it looks at thousands of shows), shared by every list and
/// search with the same city and day.
pub type Availability = crate::memo::Memo<ShowFilter, std::sync::Arc<Vec<Uuid>>>;

/// Which shows count: upcoming, on sale, in the city, starting on the day.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShowFilter {
    city: Option<String>,
    /// `[start, end)` of the UTC day.
    day: Option<(OffsetDateTime, OffsetDateTime)>,
}

/// What `GET /v1/movies` filters by, parsed and bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MovieFilter {
    shows: ShowFilter,
    genre: Option<String>,
    q: Option<String>,
}

/// A bounded text parameter: absent or empty is `None`; too long or containing
/// control characters (PostgreSQL text cannot hold NUL) is a 422.
fn text_param(
    name: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max_chars || v.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "{name} must be at most {max_chars} characters, without control characters"
        )));
    }
    Ok(Some(v.to_owned()))
}

/// `YYYY-MM-DD` as the UTC day `[start, end)`.
fn day_param(value: Option<&str>) -> Result<Option<(OffsetDateTime, OffsetDateTime)>, ApiError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::Validation("date must be a calendar day YYYY-MM-DD (UTC)".to_owned());
    if v.len() != 10 {
        return Err(bad());
    }
    let date = Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| bad())?;
    let next = date.next_day().ok_or_else(bad)?;
    Ok(Some((
        date.midnight().assume_utc(),
        next.midnight().assume_utc(),
    )))
}

impl ShowFilter {
    fn parse(city: Option<&str>, date: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            city: text_param("city", city, MAX_CITY_CHARS)?,
            day: day_param(date)?,
        })
    }

    /// Appends the conditions on `s` (shows), `t` (theaters) of this filter.
    fn push_conditions(&self, b: &mut QueryBuilder<Postgres>) {
        b.push(" s.status = 'on_sale' and s.starts_at > now()");
        if let Some(city) = &self.city {
            b.push(" and lower(t.city) = lower(")
                .push_bind(city.clone())
                .push(")");
        }
        if let Some((start, end)) = self.day {
            b.push(" and s.starts_at >= ")
                .push_bind(start)
                .push(" and s.starts_at < ")
                .push_bind(end);
        }
    }

    /// The joins that [`ShowFilter::push_conditions`] needs, after `shows s`.
    fn push_joins(&self, b: &mut QueryBuilder<Postgres>) {
        if self.city.is_some() {
            b.push(
                " join screens sc on sc.id = s.screen_id join theaters t on t.id = sc.theater_id",
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Movies.

/// A movie in a list.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000001", "title": "Avengers: Endgame", "genres": ["action"], "duration_min": 181, "rating": "UA", "language": "English"}))]
pub struct MovieSummary {
    pub id: Uuid,
    pub title: String,
    pub genres: Vec<String>,
    pub duration_min: i32,
    pub rating: Option<String>,
    pub language: Option<String>,
}

/// A list row with its sort key.
#[derive(Debug, Clone, sqlx::FromRow)]
struct MovieRow {
    #[sqlx(flatten)]
    movie: MovieSummary,
    sort_title: String,
    sort_rank: f64,
}

/// The sort key of the last movie of a page: (lower(title), id) without a search,
/// (rank, id) with one. Each list refuses the other's cursors (a 400).
#[derive(Debug, Serialize, Deserialize)]
struct TitleCursor(String, Uuid);
#[derive(Debug, Serialize, Deserialize)]
struct RankCursor(f64, Uuid);

/// Words of the search text as a prefix `tsquery` (`aven end` finds "Avengers:
/// Endgame" while typing). Only letters and digits go in, each word quoted, so it
/// always parses (a word PostgreSQL splits further becomes a phrase).
fn prefix_tsquery(q: &str) -> String {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("'{}':*", w.to_lowercase()))
        .collect::<Vec<_>>()
        .join(" & ")
}

/// What a memoised movie list is keyed by: everything the answer depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MovieListKey {
    filter: MovieFilter,
    limit: u32,
    cursor: Option<String>,
}

/// The movies with an upcoming on-sale show matching `f`, memoised.
async fn available_movies(
    app: &AppState,
    f: &ShowFilter,
) -> Result<std::sync::Arc<Vec<Uuid>>, ApiError> {
    app.availability
        .get_or_try_load(f.clone(), || async {
            let mut b = QueryBuilder::new("select distinct s.movie_id from shows s");
            f.push_joins(&mut b);
            b.push(" where");
            f.push_conditions(&mut b);
            let ids: Vec<Uuid> = b.build_query_scalar().fetch_all(&app.db).await?;
            Ok::<_, ApiError>(std::sync::Arc::new(ids))
        })
        .await
}

fn push_available(b: &mut QueryBuilder<Postgres>, ids: &[Uuid]) {
    b.push(" and m.id = any(").push_bind(ids.to_vec()).push(")");
}

fn push_genre(b: &mut QueryBuilder<Postgres>, genre: Option<&String>) {
    if let Some(g) = genre {
        b.push(" and m.genres @> array[")
            .push_bind(g.clone())
            .push("]::text[]");
    }
}

/// The query of a list without search text, ordered by title then id.
fn by_title_query(
    f: &MovieFilter,
    available: &[Uuid],
    after: Option<TitleCursor>,
    limit: u32,
) -> QueryBuilder<Postgres> {
    let mut b = QueryBuilder::new(
        "select m.id, m.title, m.genres, m.duration_min, m.rating, m.language,
                lower(m.title) as sort_title, 0::float8 as sort_rank
           from movies m where true",
    );
    push_genre(&mut b, f.genre.as_ref());
    if let Some(TitleCursor(title, id)) = after {
        b.push(" and (lower(m.title), m.id) > (")
            .push_bind(title)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    push_available(&mut b, available);
    b.push(" order by lower(m.title), m.id limit ")
        .push_bind(i64::from(limit) + 1);
    b
}

/// The query of a search, ordered by rank (full-text rank + trigram similarity +
/// a bonus for the exact title) descending, then id.
fn by_rank_query(
    f: &MovieFilter,
    available: &[Uuid],
    q: &str,
    after: Option<RankCursor>,
    limit: u32,
) -> QueryBuilder<Postgres> {
    let mut b = QueryBuilder::new(
        "select * from (select m.id, m.title, m.genres, m.duration_min, m.rating, m.language, lower(m.title) as sort_title, (ts_rank(m.search, tsq)::float8 + word_similarity(lq, movie_search_text(m.title, m.cast_members))::float8 + case when lower(m.title) = lq then ",
    );
    b.push(format!("{EXACT_TITLE_BONUS:.1}"))
        .push(" else 0 end) as sort_rank from movies m, to_tsquery('simple', ")
        .push_bind(prefix_tsquery(q))
        .push(") as tsq, lower(")
        .push_bind(q.to_owned())
        .push(
            ") as lq where (m.search @@ tsq or lq <% movie_search_text(m.title, m.cast_members))",
        );
    push_genre(&mut b, f.genre.as_ref());
    push_available(&mut b, available);
    b.push(") r");
    if let Some(RankCursor(rank, id)) = after {
        b.push(" where (r.sort_rank < ")
            .push_bind(rank)
            .push(" or (r.sort_rank = ")
            .push_bind(rank)
            .push(" and r.id > ")
            .push_bind(id)
            .push("))");
    }
    b.push(" order by r.sort_rank desc, r.id limit ")
        .push_bind(i64::from(limit) + 1);
    b
}

async fn movie_page(
    app: &AppState,
    f: &MovieFilter,
    page: &PageParams,
    limit: u32,
) -> Result<Page<MovieSummary>, ApiError> {
    match &f.q {
        None => {
            let after = page.cursor::<TitleCursor>()?;
            // PostgreSQL text cannot hold NUL: such a cursor is not one of ours.
            if after.as_ref().is_some_and(|c| c.0.contains('\0')) {
                return Err(ApiError::BadRequest(
                    "cursor is not a next_cursor of this list".to_owned(),
                ));
            }
            let mut query =
                by_title_query(f, &available_movies(app, &f.shows).await?, after, limit);
            let rows: Vec<MovieRow> = query.build_query_as().fetch_all(&app.db).await?;
            Ok(Page::from_rows(rows, limit, |r| {
                TitleCursor(r.sort_title.clone(), r.movie.id)
            })
            .map(|r| r.movie))
        }
        Some(q) => {
            let after = page.cursor::<RankCursor>()?;
            let available = available_movies(app, &f.shows).await?;
            let mut query = by_rank_query(f, &available, q, after, limit);
            let rows: Vec<MovieRow> = query.build_query_as().fetch_all(&app.db).await?;
            Ok(
                Page::from_rows(rows, limit, |r| RankCursor(r.sort_rank, r.movie.id))
                    .map(|r| r.movie),
            )
        }
    }
}

/// Movies that have upcoming on-sale shows matching the filters. Without `q`, by
/// title; with `q`, a typo-tolerant search over title and cast (whole words,
/// word prefixes and trigram similarity), best match first. `date` is a calendar
/// day in UTC.
#[utoipa::path(
    get,
    path = "/v1/movies",
    tag = "catalog",
    params(MovieQuery, PageParams),
    responses((status = 200, description = "A page of movies", body = Page<MovieSummary>))
)]
#[tracing::instrument(skip_all)]
pub async fn list_movies(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<MovieQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<MovieSummary>>, ApiError> {
    let filter = MovieFilter {
        shows: ShowFilter::parse(query.city.as_deref(), query.date.as_deref())?,
        genre: text_param("genre", query.genre.as_deref(), MAX_GENRE_CHARS)?,
        q: text_param("q", query.q.as_deref(), MAX_Q_CHARS)?,
    };
    let limit = page.limit()?;
    let key = MovieListKey {
        filter: filter.clone(),
        limit,
        cursor: page.cursor.clone(),
    };
    let page = app
        .movie_lists
        .get_or_try_load(key, || async {
            movie_page(&app, &filter, &page, limit)
                .await
                .map(std::sync::Arc::new)
        })
        .await?;
    Ok(axum::Json(Page {
        items: page.items.clone(),
        next_cursor: page.next_cursor.clone(),
    }))
}

/// A movie.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000001", "title": "Avengers: Endgame", "genres": ["action"], "cast": ["Robert Downey Jr."], "duration_min": 181, "rating": "UA", "language": "English", "synopsis": "The last stand."}))]
pub struct MovieView {
    pub id: Uuid,
    pub title: String,
    pub genres: Vec<String>,
    pub cast: Vec<String>,
    pub duration_min: i32,
    pub rating: Option<String>,
    pub language: Option<String>,
    pub synopsis: String,
}

/// A movie's details.
#[utoipa::path(
    get,
    path = "/v1/movies/{movie_id}",
    tag = "catalog",
    params(("movie_id" = Uuid, Path, description = "The movie id")),
    responses((status = 200, description = "The movie", body = MovieView))
)]
#[tracing::instrument(skip(app))]
pub async fn get_movie(
    State(app): State<AppState>,
    ApiPath(movie_id): ApiPath<Uuid>,
) -> Result<axum::Json<MovieView>, ApiError> {
    movie_view(&app, movie_id).await.map(axum::Json)
}

/// A movie, or 404.
pub(crate) async fn movie_view(app: &AppState, movie_id: Uuid) -> Result<MovieView, ApiError> {
    sqlx::query_as(
        "select id, title, genres, cast_members as cast, duration_min, rating, language, synopsis
           from movies where id = $1",
    )
    .bind(movie_id)
    .fetch_optional(&app.db)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("movie {movie_id} does not exist")))
}

// ---------------------------------------------------------------------------
// Shows.

#[derive(Debug, Serialize, ToSchema)]
pub struct TheaterRef {
    pub id: Uuid,
    pub name: String,
    pub city: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScreenRef {
    pub id: Uuid,
    pub name: String,
}

/// An upcoming show of a movie.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000002", "starts_at": "2026-11-25T18:30:00Z", "theater": {"id": "0193a000-0000-7000-8000-000000000003", "name": "PVR Phoenix", "city": "Mumbai"}, "screen": {"id": "0193a000-0000-7000-8000-000000000004", "name": "Screen 1"}, "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}]}))]
pub struct ShowSummary {
    pub id: Uuid,
    pub starts_at: String,
    pub theater: TheaterRef,
    pub screen: ScreenRef,
    pub prices: Vec<Price>,
}

/// id, starts_at, theater id, name, city, screen id, name, prices.
type ShowRow = (
    Uuid,
    OffsetDateTime,
    Uuid,
    String,
    String,
    Uuid,
    String,
    sqlx::types::Json<Vec<Price>>,
);

/// The columns of [`ShowRow`], from `shows s`, `screens sc`, `theaters t`.
const SHOW_COLUMNS: &str = "s.id, s.starts_at, t.id, t.name, t.city, sc.id, sc.name,
    (select coalesce(json_agg(json_build_object('seat_type', p.seat_type, 'amount', p.amount,
                                                'currency', p.currency) order by p.seat_type), '[]')
       from show_prices p where p.show_id = s.id)";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn show_summary(r: ShowRow) -> ShowSummary {
    let (id, starts_at, theater, theater_name, city, screen, screen_name, prices) = r;
    ShowSummary {
        id,
        starts_at: rfc3339(starts_at),
        theater: TheaterRef {
            id: theater,
            name: theater_name,
            city,
        },
        screen: ScreenRef {
            id: screen,
            name: screen_name,
        },
        prices: prices.0,
    }
}

/// The sort key of the last show of a page: (starts_at in unix microseconds, id),
/// exact at PostgreSQL's precision.
#[derive(Debug, Serialize, Deserialize)]
struct StartCursor(i64, Uuid);

/// A movie's upcoming on-sale shows, by start time then id. `date` is a calendar
/// day in UTC.
#[utoipa::path(
    get,
    path = "/v1/movies/{movie_id}/shows",
    tag = "catalog",
    params(("movie_id" = Uuid, Path, description = "The movie id"), ShowQuery, PageParams),
    responses((status = 200, description = "A page of shows", body = Page<ShowSummary>))
)]
#[tracing::instrument(skip(app, query, page))]
pub async fn list_shows(
    State(app): State<AppState>,
    ApiPath(movie_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ShowQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<ShowSummary>>, ApiError> {
    let filter = ShowFilter::parse(query.city.as_deref(), query.date.as_deref())?;
    let limit = page.limit()?;
    let after = page.cursor::<StartCursor>()?;
    let mut b = QueryBuilder::new("select ");
    b.push(SHOW_COLUMNS).push(
        " from shows s join screens sc on sc.id = s.screen_id
               join theaters t on t.id = sc.theater_id
          where s.movie_id = ",
    );
    b.push_bind(movie_id).push(" and");
    filter.push_conditions(&mut b);
    if let Some(StartCursor(us, id)) = after {
        b.push(" and (s.starts_at, s.id) > (")
            .push_bind(crate::pagination::from_unix_micros(us)?)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" order by s.starts_at, s.id limit ")
        .push_bind(i64::from(limit) + 1);
    let rows: Vec<ShowRow> = b.build_query_as().fetch_all(&app.db).await?;
    if rows.is_empty() && !movie_exists(&app, movie_id).await? {
        return Err(ApiError::NotFound(format!(
            "movie {movie_id} does not exist"
        )));
    }
    let page = Page::from_rows(rows, limit, |r| {
        StartCursor(crate::pagination::unix_micros(r.1), r.0)
    });
    Ok(axum::Json(page.map(show_summary)))
}

async fn movie_exists(app: &AppState, movie_id: Uuid) -> Result<bool, ApiError> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from movies where id = $1)")
            .bind(movie_id)
            .fetch_one(&app.db)
            .await?,
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovieRef {
    pub id: Uuid,
    pub title: String,
    pub duration_min: i32,
    pub rating: Option<String>,
    pub language: Option<String>,
}

/// A show with everything a buyer sees before picking seats.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000002", "starts_at": "2026-11-25T18:30:00Z", "ends_at": "2026-11-25T21:31:00Z", "status": "on_sale", "on_sale": true, "movie": {"id": "0193a000-0000-7000-8000-000000000001", "title": "Avengers: Endgame", "duration_min": 181, "rating": "UA", "language": "English"}, "theater": {"id": "0193a000-0000-7000-8000-000000000003", "name": "PVR Phoenix", "city": "Mumbai"}, "screen": {"id": "0193a000-0000-7000-8000-000000000004", "name": "Screen 1"}, "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}]}))]
pub struct ShowView {
    pub id: Uuid,
    pub starts_at: String,
    pub ends_at: String,
    /// `scheduled`, `on_sale` or `cancelled`.
    pub status: String,
    /// Takes bookings now: `on_sale` and not started.
    pub on_sale: bool,
    pub movie: MovieRef,
    pub theater: TheaterRef,
    pub screen: ScreenRef,
    pub prices: Vec<Price>,
}

/// [`ShowRow`], then ends_at, status, on sale now, movie id, title, duration,
/// rating, language.
type ShowDetailRow = (
    Uuid,
    OffsetDateTime,
    Uuid,
    String,
    String,
    Uuid,
    String,
    sqlx::types::Json<Vec<Price>>,
    OffsetDateTime,
    String,
    bool,
    Uuid,
    String,
    i32,
    Option<String>,
    Option<String>,
);

/// A show's details.
#[utoipa::path(
    get,
    path = "/v1/shows/{show_id}",
    tag = "catalog",
    params(("show_id" = Uuid, Path, description = "The show id")),
    responses((status = 200, description = "The show", body = ShowView))
)]
#[tracing::instrument(skip(app))]
pub async fn get_show(
    State(app): State<AppState>,
    ApiPath(show_id): ApiPath<Uuid>,
) -> Result<axum::Json<ShowView>, ApiError> {
    show_view(&app, show_id).await.map(axum::Json)
}

/// A show with its movie, theater, screen and prices, or 404.
pub(crate) async fn show_view(app: &AppState, show_id: Uuid) -> Result<ShowView, ApiError> {
    let mut b = QueryBuilder::new("select ");
    b.push(SHOW_COLUMNS).push(
        ", s.ends_at, s.status, s.status = 'on_sale' and s.starts_at > now(),
                m.id, m.title, m.duration_min, m.rating, m.language
           from shows s join screens sc on sc.id = s.screen_id
                join theaters t on t.id = sc.theater_id
                join movies m on m.id = s.movie_id
          where s.id = ",
    );
    b.push_bind(show_id);
    let row: Option<ShowDetailRow> = b.build_query_as().fetch_optional(&app.db).await?;
    let row = row.ok_or_else(|| ApiError::NotFound(format!("show {show_id} does not exist")))?;
    let (
        s0,
        s1,
        s2,
        s3,
        s4,
        s5,
        s6,
        s7,
        ends_at,
        status,
        on_sale,
        movie,
        title,
        duration,
        rating,
        language,
    ) = row;
    let summary = show_summary((s0, s1, s2, s3, s4, s5, s6, s7));
    Ok(ShowView {
        id: summary.id,
        starts_at: summary.starts_at,
        ends_at: rfc3339(ends_at),
        status,
        on_sale,
        movie: MovieRef {
            id: movie,
            title,
            duration_min: duration,
            rating,
            language,
        },
        theater: summary.theater,
        screen: summary.screen,
        prices: summary.prices,
    })
}

// ---------------------------------------------------------------------------
// Seat maps.

/// What a buyer sees of a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    Available,
    /// Held by a booking that is not paid yet (it may come free again).
    Held,
    Sold,
    /// Not for sale.
    Blocked,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeatView {
    pub id: String,
    #[serde(rename = "type")]
    pub seat_type: String,
    /// Price in minor units of `currency`; null when the show sells no seats of
    /// this type.
    pub price: Option<i64>,
    pub status: SeatState,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeatRowView {
    pub row: String,
    pub seats: Vec<SeatView>,
    /// Seat numbers after which an aisle (or gap) runs: a map draws an empty column
    /// there.
    pub aisles_after: Vec<u16>,
}

/// The live seat map of a show.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"show_id": "0193a000-0000-7000-8000-000000000002", "version": 42, "currency": "INR", "rows": [{"row": "A", "aisles_after": [], "seats": [{"id": "A1", "type": "regular", "price": 20000, "status": "available"}, {"id": "A2", "type": "regular", "price": 20000, "status": "sold"}]}]}))]
pub struct SeatMapView {
    pub show_id: ShowId,
    /// Grows with every change of the show's seats; a map with a higher version is
    /// newer.
    pub version: i64,
    /// Currency of the prices; null when the show has no prices.
    pub currency: Option<String>,
    /// Rows from the front to the back, seats from left to right.
    pub rows: Vec<SeatRowView>,
}

/// The map from Redis, or rebuilt from PostgreSQL (and stored) when Redis has none.
/// Redis being down only costs the rebuild.
async fn current_seatmap(app: &AppState, show: ShowId) -> Result<SeatMap, ApiError> {
    let key = app.keys.seatmap(show);
    let mut redis = app.redis.clone();
    match seatmap::load(&mut redis, &key).await {
        Ok(Some(map)) => return Ok(map),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "redis unavailable; seat map read from PostgreSQL"),
    }
    metrics::counter!("seatmap_rebuilds_total").increment(1);
    let map = seatmap::rebuild(&app.db, show).await?;
    let ttl = app.settings.redis.seatmap_ttl_secs;
    if let Err(e) = seatmap::store_if_newer(&mut redis, &[(key, &map)], ttl).await {
        tracing::warn!(error = %e, "rebuilt seat map not stored");
    }
    Ok(map)
}

fn seatmap_view(show: &crate::shows::CachedShow, map: SeatMap) -> SeatMapView {
    let held: HashSet<&str> = map.held.iter().map(String::as_str).collect();
    let sold: HashSet<&str> = map.sold.iter().map(String::as_str).collect();
    let prices = &show.info.prices;
    let price_of = |t: &str| prices.iter().find(|p| p.seat_type == t).map(|p| p.amount);
    let rows = show
        .screen
        .layout
        .rows
        .iter()
        .map(|row| SeatRowView {
            row: row.row.clone(),
            aisles_after: row.aisles_after.clone(),
            seats: row
                .seats
                .iter()
                .map(|seat| {
                    let id = format!("{}{}", row.row, seat.number);
                    // An occupied seat shows its occupant's status, as in the sequencer.
                    let status = if sold.contains(id.as_str()) {
                        SeatState::Sold
                    } else if held.contains(id.as_str()) {
                        SeatState::Held
                    } else if seat.blocked {
                        SeatState::Blocked
                    } else {
                        SeatState::Available
                    };
                    SeatView {
                        price: price_of(&seat.seat_type),
                        seat_type: seat.seat_type.clone(),
                        id,
                        status,
                    }
                })
                .collect(),
        })
        .collect();
    SeatMapView {
        show_id: show.info.show_id,
        version: map.version,
        currency: prices.first().map(|p| p.currency.clone()),
        rows,
    }
}

/// The live seat map: every seat with its type, price and status. Never cached by
/// clients (`Cache-Control: no-store`); it is at most one sequencer batch behind.
#[utoipa::path(
    get,
    path = "/v1/shows/{show_id}/seats",
    tag = "catalog",
    params(("show_id" = Uuid, Path, description = "The show id")),
    responses((status = 200, description = "The seat map", body = SeatMapView,
               headers(("Cache-Control" = String, description = "`no-store`"))))
)]
#[tracing::instrument(skip(app))]
pub async fn get_seats(
    State(app): State<AppState>,
    ApiPath(show_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let show_id = ShowId(show_id);
    let show = app
        .shows
        .get(show_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("show {show_id} does not exist")))?;
    let map = current_seatmap(&app, show_id).await?;
    let mut res = axum::Json(seatmap_view(&show, map)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `/v1/movies...` and `/v1/shows/{show_id}...`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_movies))
        .routes(routes!(get_movie))
        .routes(routes!(list_shows))
        .routes(routes!(get_show))
        .routes(routes!(get_seats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_become_a_prefix_query_that_always_parses() {
        assert_eq!(prefix_tsquery("Avengers: End"), "'avengers':* & 'end':*");
        assert_eq!(prefix_tsquery("'&|!():*"), "");
    }

    #[test]
    fn text_parameters_are_bounded_and_free_of_control_characters() {
        assert_eq!(text_param("q", Some("  "), 5).unwrap(), None);
        assert_eq!(text_param("q", Some(" ab "), 5).unwrap(), Some("ab".into()));
        assert!(text_param("q", Some("abcdef"), 5).is_err());
        assert!(text_param("q", Some("a\0b"), 5).is_err());
    }

    #[test]
    fn a_date_is_one_utc_day_and_anything_else_is_a_422() {
        let (start, end) = day_param(Some("2026-11-24")).unwrap().unwrap();
        assert_eq!(rfc3339(start), "2026-11-24T00:00:00Z");
        assert_eq!(rfc3339(end), "2026-11-25T00:00:00Z");
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "24-11-2026",
            "2026-11-24T00:00",
            "9999-12-31x",
        ] {
            assert!(day_param(Some(bad)).is_err(), "{bad}");
        }
        assert!(day_param(Some("9999-12-31")).is_err());
    }
}
