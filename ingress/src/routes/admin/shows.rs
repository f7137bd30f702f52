//! Shows: scheduling (overlaps with the cleaning buffer refused), prices, changes while nothing is booked; and cancelling a show.

use super::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"movie_id": "0193a000-0000-7000-8000-000000000010", "screen_id": "0193a000-0000-7000-8000-000000000011", "starts_at": "2026-12-01T13:30:00Z", "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}, {"seat_type": "premium", "amount": 35000, "currency": "INR"}]}))]
pub struct ShowInput {
    /// The movie (or event: one id space); `event_id` names the same.
    #[serde(default)]
    pub movie_id: Option<Uuid>,
    /// The event (of any kind) shown; give it or `movie_id`.
    #[serde(default)]
    pub event_id: Option<Uuid>,
    pub screen_id: Uuid,
    /// RFC 3339, in the future.
    pub starts_at: String,
    /// One price per seat type of the screen's layout, all in one currency.
    pub prices: Vec<Price>,
    /// Demand pricing: tiers by the share of places sold and by the time left
    /// before the start; the sequencer prices each hold by the tier reached
    /// before it. Absent: every seat at its base price.
    #[serde(default)]
    pub pricing: Option<contracts::Pricing>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"starts_at": "2026-12-01T16:30:00Z"}))]
pub struct ShowChange {
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub prices: Option<Vec<Price>>,
    /// New demand pricing (replaces the old one; see `ShowInput::pricing`).
    #[serde(default)]
    pub pricing: Option<contracts::Pricing>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowListQuery {
    pub screen_id: Option<Uuid>,
    pub movie_id: Option<Uuid>,
    /// The same as `movie_id` (one id space), for events of any kind.
    pub event_id: Option<Uuid>,
    /// Shows starting at or after this instant (RFC 3339), e.g. a calendar's week.
    pub from: Option<String>,
    /// Shows starting before this instant (RFC 3339).
    pub to: Option<String>,
}

/// An optional RFC 3339 bound of a list query, named in the 422 when it is not one.
fn bound(name: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|r| {
        OffsetDateTime::parse(r.trim(), &Rfc3339).map_err(|_| {
            ApiError::Validation(format!(
                "{name} must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"
            ))
        })
    })
    .transpose()
}

/// What `movie_id` and `event_id` name together: they are one id space, so two
/// different ids are a 422; `None` when neither is given.
pub(super) fn event_of(
    movie_id: Option<Uuid>,
    event_id: Option<Uuid>,
) -> Result<Option<Uuid>, ApiError> {
    match (movie_id, event_id) {
        (Some(m), Some(e)) if m != e => Err(ApiError::Validation(
            "movie_id and event_id name the same thing (one id space): give one of them".into(),
        )),
        (m, e) => Ok(m.or(e)),
    }
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
pub(super) fn check_prices(prices: &[Price], layout: &ScreenLayout) -> Result<(), ApiError> {
    // Zones are priced by their seat type like seats.
    let types: BTreeSet<&str> = layout.seat_types();
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
pub(super) async fn overlapping(
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
pub(super) fn schedule(
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

pub(super) async fn write_prices(
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

/// When a show starts, ends, and leaves its screen (the cleaning buffer after).
#[derive(Debug, Clone, Copy)]
pub(super) struct ShowTimes {
    pub start: OffsetDateTime,
    pub ends: OffsetDateTime,
    pub busy: OffsetDateTime,
}

/// Writes a show on sale with its prices (the caller checked overlaps in `tx`; the
/// database's exclusion constraint stands behind that check).
pub(super) async fn insert_show(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    movie: Uuid,
    screen: Uuid,
    t: ShowTimes,
    prices: &[Price],
    pricing: Option<&contracts::Pricing>,
) -> Result<(), ApiError> {
    sqlx::query(
        "insert into shows (id, movie_id, screen_id, starts_at, ends_at, busy_until, status,
                            pricing)
         values ($1, $2, $3, $4, $5, $6, 'on_sale', $7)",
    )
    .bind(id)
    .bind(movie)
    .bind(screen)
    .bind(t.start)
    .bind(t.ends)
    .bind(t.busy)
    .bind(pricing.map(sqlx::types::Json))
    .execute(&mut *tx)
    .await
    .map_err(|e| db_conflict(e, "the show"))?;
    write_prices(tx, id, prices).await
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
    access: Access,
    ApiJson(body): ApiJson<ShowInput>,
) -> Result<Response, ApiError> {
    let start = parse_start(&body.starts_at)?;
    let event = event_of(body.movie_id, body.event_id)?
        .ok_or_else(|| ApiError::Validation("event_id (or movie_id) is required".into()))?;
    let movie = app.catalog.movie_of_any_kind(event).await?;
    let screen = screen(&app, body.screen_id).await?;
    access.theater(screen.theater_id)?;
    check_prices(&body.prices, &screen.layout)?;
    if let Some(p) = &body.pricing {
        p.validate().map_err(ApiError::Validation)?;
    }
    let (ends, busy) = schedule(&app, start, movie.duration_min);
    let id = Uuid::now_v7();
    let mut tx = app.db.begin().await?;
    if let Some((other, at)) = overlapping(&mut tx, screen.id, start, busy, id).await? {
        return Err(overlap_error(other, at));
    }
    let times = ShowTimes { start, ends, busy };
    let pricing = body.pricing.as_ref();
    insert_show(
        &mut tx,
        id,
        movie.id,
        screen.id,
        times,
        &body.prices,
        pricing,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(app.catalog.show(id).await?)).into_response())
}

/// id, movie (event) id, screen id, starts_at, ends_at, status, the theater's time
/// zone, check-ins, bookings that admit.
type ShowListRow = (
    Uuid,
    Uuid,
    Uuid,
    OffsetDateTime,
    OffsetDateTime,
    String,
    String,
    i64,
    i64,
);

/// Shows by start time, optionally of one screen or movie (or event), optionally
/// starting within `[from, to)` (a calendar's week).
#[utoipa::path(get, operation_id = "admin_list_shows", path = "/v1/admin/shows", tag = "admin", security(("bearer" = [])),
    params(ShowListQuery, PageParams),
    responses((status = 200, description = "A page of shows with their start and end", body = Page<ShowListItem>),
        (status = 422, description = "A bound or cursor that is not valid (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn list_shows(
    State(app): State<AppState>,
    access: Access,
    ApiQuery(q): ApiQuery<ShowListQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<ShowListItem>>, ApiError> {
    let limit = page.limit()?;
    let after = page
        .cursor::<StartCursor>()?
        .map(|StartCursor(us, id)| crate::pagination::from_unix_micros(us).map(|t| (t, id)))
        .transpose()?;
    let event = event_of(q.movie_id, q.event_id)?;
    let from = bound("from", q.from.as_deref())?;
    let to = bound("to", q.to.as_deref())?;
    // The door's counts ride along (two index lookups per show of the page), so the
    // admin page shows them without one request per show.
    let rows: Vec<ShowListRow> = sqlx::query_as(
        "select s.id, s.movie_id, s.screen_id, s.starts_at, s.ends_at, s.status, t.time_zone,
                (select count(*) from checkins c where c.show_id = s.id),
                (select count(*) from bookings b where b.show_id = s.id
                    and (b.status = 'confirmed'
                         or exists (select 1 from checkins c where c.booking_id = b.id)))
           from shows s join screens sc on sc.id = s.screen_id
                join theaters t on t.id = sc.theater_id
          where ($1::uuid is null or s.screen_id = $1) and ($2::uuid is null or s.movie_id = $2)
            and ($3::timestamptz is null or (s.starts_at, s.id) > ($3, $4))
            and ($6::uuid[] is null or sc.theater_id = any($6))
            and ($7::timestamptz is null or s.starts_at >= $7)
            and ($8::timestamptz is null or s.starts_at < $8)
          order by s.starts_at, s.id limit $5",
    )
    .bind(q.screen_id)
    .bind(event)
    .bind(after.map(|(t, _)| t))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(i64::from(limit) + 1)
    .bind(access.scope.theaters())
    .bind(from)
    .bind(to)
    .fetch_all(&app.db)
    .await?;
    let page = Page::from_rows(rows, limit, |r| {
        StartCursor(crate::pagination::unix_micros(r.3), r.0)
    });
    Ok(axum::Json(page.map(
        |(id, movie_id, screen_id, starts, ends, status, time_zone, checked_in, admitted)| {
            ShowListItem {
                id,
                movie_id,
                event_id: movie_id,
                screen_id,
                starts_at: rfc3339(starts),
                starts_at_local: platform::localtime::local_rfc3339(starts, &time_zone),
                ends_at: rfc3339(ends),
                ends_at_local: platform::localtime::local_rfc3339(ends, &time_zone),
                time_zone,
                status,
                checked_in,
                admitted,
            }
        },
    )))
}

#[derive(Debug, Serialize, Deserialize)]
struct StartCursor(i64, Uuid);

#[derive(Debug, Serialize, ToSchema)]
pub struct ShowListItem {
    pub id: Uuid,
    pub movie_id: Uuid,
    /// The same as `movie_id` (one id space).
    pub event_id: Uuid,
    pub screen_id: Uuid,
    pub starts_at: String,
    /// `starts_at` on the theater's clock.
    pub starts_at_local: String,
    /// When the show ends (its duration; the screen's cleaning buffer comes after).
    pub ends_at: String,
    /// `ends_at` on the theater's clock.
    pub ends_at_local: String,
    /// The theater's IANA time zone.
    pub time_zone: String,
    pub status: String,
    /// Bookings checked in at the door.
    pub checked_in: i64,
    /// Bookings that admit: confirmed, or checked in already.
    pub admitted: i64,
}

/// One show.
#[utoipa::path(get, operation_id = "admin_get_show", path = "/v1/admin/shows/{show_id}", tag = "admin", security(("bearer" = [])),
    params(("show_id" = Uuid, Path, description = "The show id")),
    responses((status = 200, description = "The show", body = ShowView)))]
pub async fn get_show(
    State(app): State<AppState>,
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<ShowView>, ApiError> {
    access.show(&app.db, id).await?;
    app.catalog.show(id).await.map(axum::Json)
}

/// Moves a show or changes its prices or demand pricing: only before it has any
/// booking.
#[utoipa::path(patch, path = "/v1/admin/shows/{show_id}", tag = "admin", security(("bearer" = [])),
    params(("show_id" = Uuid, Path, description = "The show id")),
    request_body = ShowChange,
    responses(
        (status = 200, description = "The show", body = ShowView),
        (status = 409, description = "The show has bookings, or the new time overlaps (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_show(
    State(app): State<AppState>,
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ShowChange>,
) -> Result<axum::Json<ShowView>, ApiError> {
    access.show(&app.db, id).await?;
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
    if let Some(pricing) = &body.pricing {
        pricing.validate().map_err(ApiError::Validation)?;
        sqlx::query("update shows set pricing = $2 where id = $1")
            .bind(id)
            .bind(sqlx::types::Json(pricing))
            .execute(&mut *tx)
            .await?;
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
    app.catalog.show(id).await.map(axum::Json)
}

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
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    access.show(&app.db, id).await?;
    let caller = access.caller;
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
