//! Events of every kind (API.md, Round 2, "Catalog of events"): created with
//! `POST /v1/admin/events`. They are rows of the movies table (one id space), so
//! `/v1/admin/movies` lists, reads and changes them too, and a show of one is
//! scheduled with `POST /v1/admin/shows {event_id, ...}`.

use super::*;
use crate::catalog::EventView;
use contracts::EventKind;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "concert", "title": "Arijit Singh Live", "performers": ["Arijit Singh"], "genres": ["bollywood"], "duration_min": 180, "language": "Hindi"}))]
pub struct EventInput {
    pub kind: EventKind,
    pub title: String,
    #[serde(default)]
    pub genres: Vec<String>,
    /// Who is on stage or on the field: the artists, the cast, the company or the
    /// teams (`cast` and `teams` are other names of this field).
    #[serde(default, alias = "cast", alias = "teams")]
    pub performers: Vec<String>,
    /// 1 to 600; the kind's usual length when absent (a show's end and the
    /// screen's schedule follow from it).
    #[serde(default)]
    pub duration_min: Option<i32>,
    #[serde(default)]
    pub rating: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub synopsis: Option<String>,
    /// Most tickets one user may hold or buy for any one show of the event (1 to
    /// 100; no cap beyond the per-booking one when absent): the sequencer enforces
    /// it, so parallel requests of one user cannot pass it together.
    #[serde(default)]
    pub max_tickets_per_user: Option<i32>,
}

/// How long an event of `kind` usually runs, in minutes.
fn usual_duration_min(kind: EventKind) -> i32 {
    match kind {
        EventKind::Movie | EventKind::Other => 120,
        EventKind::Concert | EventKind::Sports => 180,
        EventKind::Play => 150,
        EventKind::Comedy => 90,
    }
}

/// Adds an event of any kind.
#[utoipa::path(post, path = "/v1/admin/events", tag = "admin", security(("bearer" = [])),
    request_body = EventInput,
    responses((status = 201, description = "The event", body = EventView)))]
pub async fn create_event(
    State(app): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<EventInput>,
) -> Result<Response, ApiError> {
    // Like movies, events belong to the shared catalog: platform admins only.
    access.platform()?;
    let id = insert_event(
        &app,
        NewEvent {
            kind: body.kind,
            title: &body.title,
            genres: &body.genres,
            people: ("performers", &body.performers),
            duration_min: body
                .duration_min
                .unwrap_or_else(|| usual_duration_min(body.kind)),
            rating: body.rating.as_deref(),
            language: body.language.as_deref(),
            synopsis: body.synopsis.as_deref(),
            max_tickets_per_user: body.max_tickets_per_user,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(app.catalog.event(id).await?),
    )
        .into_response())
}

/// A catalog entry as an admin sends it: a movie or an event of another kind (one
/// table, one id space).
pub(super) struct NewEvent<'a> {
    pub kind: EventKind,
    pub title: &'a str,
    pub genres: &'a [String],
    /// Cast, performers or teams, with the field name they were sent under (for the
    /// validation message).
    pub people: (&'static str, &'a [String]),
    pub duration_min: i32,
    pub rating: Option<&'a str>,
    pub language: Option<&'a str>,
    pub synopsis: Option<&'a str>,
    pub max_tickets_per_user: Option<i32>,
}

/// Validates `e` (`422` naming the field) and inserts it; its new id.
pub(super) async fn insert_event(app: &AppState, e: NewEvent<'_>) -> Result<Uuid, ApiError> {
    let id = Uuid::now_v7();
    let (people_field, people) = e.people;
    sqlx::query(
        "insert into movies (id, kind, title, genres, cast_members, duration_min, rating, language,
                             synopsis, max_tickets_per_user)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(e.kind.as_str())
    .bind(text("title", e.title, MAX_NAME_CHARS)?)
    .bind(texts("genres", e.genres, 40)?)
    .bind(texts(people_field, people, MAX_NAME_CHARS)?)
    .bind(check_duration(e.duration_min)?)
    .bind(optional_text("rating", e.rating, 20)?)
    .bind(optional_text("language", e.language, 40)?)
    .bind(optional_text("synopsis", e.synopsis, MAX_SYNOPSIS_CHARS)?.unwrap_or_default())
    .bind(check_ticket_cap(e.max_tickets_per_user)?)
    .execute(&app.db)
    .await?;
    Ok(id)
}

/// A per-user ticket cap: 1 to 100, or none.
fn check_ticket_cap(cap: Option<i32>) -> Result<Option<i32>, ApiError> {
    match cap {
        Some(n) if !(1..=100).contains(&n) => Err(ApiError::Validation(
            "max_tickets_per_user must be 1 to 100 (or absent: no cap)".into(),
        )),
        c => Ok(c),
    }
}
