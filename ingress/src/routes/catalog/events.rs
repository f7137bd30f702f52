//! The catalog of events of every kind (API.md, Round 2, "Catalog of events"):
//! `/v1/events...`, beside `/v1/movies...`, which stays the movies view. No token
//! needed.

use crate::catalog::{
    EventSummary, EventView, KindQuery, MovieFilter, MovieQuery, ShowFilter, ShowQuery, ShowSummary,
};
use crate::extract::{ApiPath, ApiQuery};
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Events of every kind (movies, concerts, sports, plays, comedy, other) that
/// have upcoming on-sale shows matching the filters; `kind` narrows to one kind.
/// Without `q`, by title; with `q`, a typo-tolerant search over title and
/// performers, best match first. `date` is the theater's local day.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "catalog",
    params(KindQuery, MovieQuery, PageParams),
    responses((status = 200, description = "A page of events", body = Page<EventSummary>))
)]
#[tracing::instrument(skip_all)]
pub async fn list_events(
    State(app): State<AppState>,
    ApiQuery(kind): ApiQuery<KindQuery>,
    ApiQuery(query): ApiQuery<MovieQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<EventSummary>>, ApiError> {
    let filter = MovieFilter::parse_events(&query, kind.parse()?)?;
    app.catalog.events(filter, &page).await.map(axum::Json)
}

/// An event's details (any kind; a movie's id works too: one id space).
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}",
    tag = "catalog",
    params(("event_id" = Uuid, Path, description = "The event id")),
    responses((status = 200, description = "The event", body = EventView))
)]
#[tracing::instrument(skip(app))]
pub async fn get_event(
    State(app): State<AppState>,
    ApiPath(event_id): ApiPath<Uuid>,
) -> Result<axum::Json<EventView>, ApiError> {
    app.catalog.event(event_id).await.map(axum::Json)
}

/// An event's upcoming on-sale shows, by start time then id. `date` is the
/// theater's local day.
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/shows",
    tag = "catalog",
    params(("event_id" = Uuid, Path, description = "The event id"), ShowQuery, PageParams),
    responses((status = 200, description = "A page of shows", body = Page<ShowSummary>))
)]
#[tracing::instrument(skip(app, query, page))]
pub async fn list_event_shows(
    State(app): State<AppState>,
    ApiPath(event_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ShowQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<ShowSummary>>, ApiError> {
    let filter = ShowFilter::from_query(&query)?;
    let shows = app.catalog.shows_of_event(event_id, &filter, &page).await?;
    Ok(axum::Json(shows))
}

/// `/v1/events...`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(get_event))
        .routes(routes!(list_event_shows))
}
