//! Screens and their seat layouts (validated; frozen once a show on the screen has a booking).

use super::*;

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

pub(super) async fn screen(app: &AppState, id: Uuid) -> Result<Screen, ApiError> {
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
    access: Access,
    ApiPath(theater_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ScreenInput>,
) -> Result<Response, ApiError> {
    access.theater(theater_id)?;
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
    access: Access,
    ApiPath(theater_id): ApiPath<Uuid>,
) -> Result<axum::Json<Vec<Screen>>, ApiError> {
    access.theater(theater_id)?;
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
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Screen>, ApiError> {
    access.screen(&app.db, id).await?;
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
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<LayoutChange>,
) -> Result<axum::Json<Screen>, ApiError> {
    access.screen(&app.db, id).await?;
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
