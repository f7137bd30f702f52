//! Theaters: create, list, read, rename or move, each with its IANA time zone.

use super::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "PVR Phoenix", "city": "Mumbai", "address": "Lower Parel", "time_zone": "Asia/Kolkata"}))]
pub struct TheaterInput {
    pub name: String,
    pub city: String,
    #[serde(default)]
    pub address: Option<String>,
    /// The IANA time zone of the theater's clock (`Asia/Kolkata` when absent); an
    /// unknown zone is a 422.
    #[serde(default)]
    pub time_zone: Option<String>,
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
    /// A new IANA time zone: show times stay the same instants, read on the new
    /// clock (correcting a wrong zone).
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Theater {
    pub id: Uuid,
    pub name: String,
    pub city: String,
    pub address: String,
    /// IANA time zone, e.g. `Asia/Kolkata`.
    pub time_zone: String,
}

/// An IANA time zone name known to both the tz database ingress reads and
/// PostgreSQL's (the catalog's day filters compute in SQL), in its canonical
/// spelling; anything else is a 422.
async fn time_zone(app: &AppState, raw: &str) -> Result<String, ApiError> {
    let zone = platform::localtime::canonical_zone(raw.trim())
        .map_err(|e| ApiError::Validation(e.to_string()))?;
    let known: bool =
        sqlx::query_scalar("select exists (select 1 from pg_timezone_names where name = $1)")
            .bind(&zone)
            .fetch_one(&app.db)
            .await?;
    if !known {
        return Err(ApiError::Validation(
            platform::localtime::UnknownTimeZone(zone).to_string(),
        ));
    }
    Ok(zone)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TheaterQuery {
    /// Only theaters in this city (any case).
    pub city: Option<String>,
}

pub(super) async fn theater(app: &AppState, id: Uuid) -> Result<Theater, ApiError> {
    sqlx::query_as("select id, name, city, address, time_zone from theaters where id = $1")
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
    access: Access,
    ApiJson(body): ApiJson<TheaterInput>,
) -> Result<Response, ApiError> {
    // A new theater is in no one's scope yet: only a platform admin adds one.
    access.platform()?;
    let t = Theater {
        id: Uuid::now_v7(),
        name: text("name", &body.name, MAX_NAME_CHARS)?,
        city: text("city", &body.city, MAX_NAME_CHARS)?,
        address: optional_text("address", body.address.as_deref(), MAX_ADDRESS_CHARS)?
            .unwrap_or_default(),
        time_zone: time_zone(
            &app,
            body.time_zone
                .as_deref()
                .unwrap_or(platform::localtime::DEFAULT_TIME_ZONE),
        )
        .await?,
    };
    sqlx::query(
        "insert into theaters (id, name, city, address, time_zone) values ($1, $2, $3, $4, $5)",
    )
    .bind(t.id)
    .bind(&t.name)
    .bind(&t.city)
    .bind(&t.address)
    .bind(&t.time_zone)
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
    access: Access,
    ApiQuery(q): ApiQuery<TheaterQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<Theater>>, ApiError> {
    let limit = page.limit()?;
    let after = page.cursor::<IdCursor>()?.map(|c| c.0);
    let city = optional_text("city", q.city.as_deref(), MAX_NAME_CHARS)?;
    let rows: Vec<Theater> = sqlx::query_as(
        "select id, name, city, address, time_zone from theaters
          where ($1::uuid is null or id > $1) and ($2::text is null or lower(city) = lower($2))
            and ($4::uuid[] is null or id = any($4))
          order by id limit $3",
    )
    .bind(after)
    .bind(city)
    .bind(i64::from(limit) + 1)
    .bind(access.scope.theaters())
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
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Theater>, ApiError> {
    access.theater(id)?;
    theater(&app, id).await.map(axum::Json)
}

/// Changes a theater's name, city, address or time zone.
#[utoipa::path(patch, path = "/v1/admin/theaters/{theater_id}", tag = "admin", security(("bearer" = [])),
    params(("theater_id" = Uuid, Path, description = "The theater id")),
    request_body = TheaterChange,
    responses((status = 200, description = "The theater", body = Theater)))]
pub async fn update_theater(
    State(app): State<AppState>,
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TheaterChange>,
) -> Result<axum::Json<Theater>, ApiError> {
    access.theater(id)?;
    let name = optional_text("name", body.name.as_deref(), MAX_NAME_CHARS)?;
    let city = optional_text("city", body.city.as_deref(), MAX_NAME_CHARS)?;
    let address = optional_text("address", body.address.as_deref(), MAX_ADDRESS_CHARS)?;
    let zone = match body.time_zone.as_deref() {
        Some(z) => Some(time_zone(&app, z).await?),
        None => None,
    };
    sqlx::query(
        "update theaters set name = coalesce($2, name), city = coalesce($3, city),
                address = coalesce($4, address), time_zone = coalesce($5, time_zone)
          where id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(city)
    .bind(address)
    .bind(zone)
    .execute(&app.db)
    .await?;
    theater(&app, id).await.map(axum::Json)
}
