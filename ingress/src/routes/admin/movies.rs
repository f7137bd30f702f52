//! Movies: create, list, read, update.

use super::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "The Queue Must Go On", "genres": ["drama"], "cast": ["Asha Rao"], "duration_min": 128, "rating": "UA", "language": "Hindi", "synopsis": "A ticket, a queue, a city."}))]
pub struct MovieInput {
    /// `movie` unless given (events of other kinds: `POST /v1/admin/events`).
    #[serde(default)]
    pub kind: Option<contracts::EventKind>,
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
    /// Most tickets one user may hold or buy for any one show (1 to 100).
    #[serde(default)]
    pub max_tickets_per_user: Option<i32>,
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

pub(super) fn check_duration(d: i32) -> Result<i32, ApiError> {
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
    access: Access,
    ApiJson(body): ApiJson<MovieInput>,
) -> Result<Response, ApiError> {
    // The catalog of movies is shared by every theater: a theater's admin reads it
    // (to schedule shows) but does not change what other theaters show.
    access.platform()?;
    let id = insert_event(
        &app,
        NewEvent {
            kind: body.kind.unwrap_or(contracts::EventKind::Movie),
            title: &body.title,
            genres: &body.genres,
            people: ("cast", &body.cast),
            duration_min: body.duration_min,
            rating: body.rating.as_deref(),
            language: body.language.as_deref(),
            synopsis: body.synopsis.as_deref(),
            max_tickets_per_user: body.max_tickets_per_user,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(app.catalog.movie_of_any_kind(id).await?),
    )
        .into_response())
}

/// Filters of the admin's list of movies and events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovieListQuery {
    /// Only titles containing this text (case-insensitive), e.g. the admin's
    /// event picker.
    pub q: Option<String>,
}

/// Movies and events of every kind, oldest first.
#[utoipa::path(get, operation_id = "admin_list_movies", path = "/v1/admin/movies", tag = "admin", security(("bearer" = [])),
    params(MovieListQuery, PageParams),
    responses((status = 200, description = "A page of movies", body = Page<MovieView>)))]
pub async fn list_movies(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<MovieListQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<MovieView>>, ApiError> {
    let limit = page.limit()?;
    let after = page.cursor::<IdCursor>()?.map(|c| c.0);
    // The text is matched literally: LIKE's wildcards in it are escaped.
    let pattern =
        q.q.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                let escaped = t
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                format!("%{escaped}%")
            });
    let rows: Vec<MovieView> = sqlx::query_as(
        "select id, kind, title, genres, cast_members as cast, duration_min, rating, language,
                synopsis
           from movies where ($1::uuid is null or id > $1)
            and ($3::text is null or title ilike $3)
          order by id limit $2",
    )
    .bind(after)
    .bind(i64::from(limit) + 1)
    .bind(pattern)
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(Page::from_rows(rows, limit, |m| IdCursor(m.id))))
}

/// One movie.
#[utoipa::path(get, operation_id = "admin_get_movie", path = "/v1/admin/movies/{movie_id}", tag = "admin", security(("bearer" = [])),
    params(("movie_id" = Uuid, Path, description = "The movie id")),
    responses((status = 200, description = "The movie", body = MovieView)))]
pub async fn get_movie(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<MovieView>, ApiError> {
    app.catalog.movie_of_any_kind(id).await.map(axum::Json)
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
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<MovieChange>,
) -> Result<axum::Json<MovieView>, ApiError> {
    access.platform()?;
    app.catalog.movie_of_any_kind(id).await?;
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
    app.catalog.movie_of_any_kind(id).await.map(axum::Json)
}
