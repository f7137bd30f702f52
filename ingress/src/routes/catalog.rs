//! Browsing, search and live seat maps (API.md, "Catalog"); no token needed. The
//! handlers parse the query and answer what the read model ([`crate::catalog`])
//! finds.

use crate::catalog::seats::{self, SeatMapView};
use crate::catalog::{
    MovieFilter, MovieQuery, MovieSummary, MovieView, ShowFilter, ShowQuery, ShowSummary, ShowView,
};
use crate::extract::{ApiPath, ApiQuery};
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use contracts::ShowId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

mod events;

/// Movies that have upcoming on-sale shows matching the filters. Without `q`, by
/// title; with `q`, a typo-tolerant search over title and cast (whole words,
/// word prefixes and trigram similarity), best match first. `date` is the
/// theater's local day; `location` is an alias of `city`. Movies only: events of
/// other kinds are in `/v1/events`.
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
    let filter = MovieFilter::parse(&query)?;
    app.catalog.movies(filter, &page).await.map(axum::Json)
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
    app.catalog.movie(movie_id).await.map(axum::Json)
}

/// A movie's upcoming on-sale shows, by start time then id, each time in UTC and
/// on the theater's clock. `date` is the theater's local day.
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
    let filter = ShowFilter::from_query(&query)?;
    let shows = app.catalog.shows_of_movie(movie_id, &filter, &page).await?;
    Ok(axum::Json(shows))
}

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
    app.catalog.show(show_id).await.map(axum::Json)
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
    let map = seats::current(
        &app.db,
        &app.redis,
        app.keys.seatmap(show_id),
        app.settings.redis.seatmap_ttl_secs,
        show_id,
    )
    .await?;
    let mut res = axum::Json(seats::view(&show, map)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `/v1/movies...`, `/v1/shows/{show_id}...` and `/v1/events...`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_movies))
        .routes(routes!(get_movie))
        .routes(routes!(list_shows))
        .routes(routes!(get_show))
        .routes(routes!(get_seats))
        .merge(events::router())
}
