//! Online check-in at the gate, and a show's check-in list.

use super::{admit, gate, micros, verified};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use crate::scope::Access;
use crate::state::AppState;
use crate::timefmt::rfc3339;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::{BookingId, ShowId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "eyJraWQiOiJrMSIsImJpZCI6Ii4uLiJ9.c2lnbmF0dXJl", "gate": "North 2"}))]
pub struct CheckinInput {
    /// The ticket token (the QR code's text).
    pub token: String,
    /// Where the ticket was scanned (free text, at most 64 characters).
    #[serde(default)]
    pub gate: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckedIn {
    pub booking_id: BookingId,
    pub show_id: ShowId,
    /// The booking's seats: who may come in on this ticket.
    pub seats: Vec<String>,
    pub checked_in_at: String,
    pub gate: Option<String>,
}

/// The body of the `409 already_checked_in` problem (problem+json with these
/// extension members).
#[derive(Debug, Serialize, ToSchema)]
pub struct AlreadyCheckedIn {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// `already_checked_in`.
    pub code: String,
    pub booking_id: BookingId,
    /// When the first scan let this ticket in.
    pub checked_in_at: String,
    /// Where (null when the scanner named no gate).
    pub gate: Option<String>,
}

/// Checks a ticket in: `201` with its seats the first time, `409
/// already_checked_in` with the first scan's time and gate afterwards, `422
/// ticket_not_valid` (with a `reason`) for a forged or malformed ticket or a
/// booking that is not confirmed (cancelled, refunded, ...). Staff and scoped admins
/// only at their theaters' shows (`403`).
#[utoipa::path(post, path = "/v1/checkins", tag = "door", security(("bearer" = [])),
    request_body = CheckinInput,
    responses(
        (status = 201, description = "Checked in: let the ticket's seats in", body = CheckedIn),
        (status = 409, description = "Checked in before (problem+json with checked_in_at and gate)", body = AlreadyCheckedIn, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(booking_id))]
pub async fn check_in(
    State(app): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<CheckinInput>,
) -> Result<Response, ApiError> {
    let gate = gate(body.gate.as_deref())?;
    let claims = verified(&app, &body.token)?;
    tracing::Span::current().record("booking_id", tracing::field::display(claims.bid));
    let now = micros(OffsetDateTime::now_utc());
    let mut tx = app.db.begin().await?;
    let admitted = admit(&mut tx, &access, &claims).await?;
    // The primary key on booking_id admits one check-in per booking, whatever races.
    let inserted: Option<OffsetDateTime> = sqlx::query_scalar(
        "insert into checkins (booking_id, show_id, seats, checked_in_at, gate, source, scanned_by)
         values ($1, $2, $3, $4, $5, 'online', $6)
         on conflict (booking_id) do nothing
         returning checked_in_at",
    )
    .bind(claims.bid.0)
    .bind(admitted.show)
    .bind(&admitted.seats)
    .bind(now)
    .bind(&gate)
    .bind(access.caller.user_id.0)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(at) = inserted else {
        let (at, first_gate): (OffsetDateTime, Option<String>) =
            sqlx::query_as("select checked_in_at, gate from checkins where booking_id = $1")
                .bind(claims.bid.0)
                .fetch_one(&mut *tx)
                .await?;
        return Err(ApiError::AlreadyCheckedIn {
            booking_id: claims.bid.0,
            checked_in_at: rfc3339(at),
            gate: first_gate,
        });
    };
    tx.commit().await?;
    tracing::info!(booking_id = %claims.bid, gate = ?gate, "checked in");
    Ok((
        StatusCode::CREATED,
        axum::Json(CheckedIn {
            booking_id: claims.bid,
            show_id: ShowId(admitted.show),
            seats: admitted.seats,
            checked_in_at: rfc3339(at),
            gate,
        }),
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinItem {
    pub booking_id: BookingId,
    pub seats: Vec<String>,
    pub checked_in_at: String,
    pub gate: Option<String>,
    /// `online` (`POST /v1/checkins`) or `offline` (a scanner's batch).
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinList {
    pub show_id: ShowId,
    /// Bookings checked in.
    pub checked_in: i64,
    /// Bookings that admit: confirmed, or checked in already.
    pub total: i64,
    /// Seats of the bookings checked in, and of all of them.
    pub checked_in_seats: i64,
    pub total_seats: i64,
    /// Check-ins by time (oldest first), paged with `?limit=&cursor=`.
    pub items: Vec<CheckinItem>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AtCursor(i64, Uuid);

/// booking, seats, checked_in_at, gate, source.
type CheckinRow = (Uuid, Vec<String>, OffsetDateTime, Option<String>, String);

/// A show's check-ins with counts: how many of its bookings (and seats) are in.
#[utoipa::path(get, path = "/v1/admin/shows/{show_id}/checkins", tag = "door", security(("bearer" = [])),
    params(("show_id" = Uuid, Path, description = "The show id"), PageParams),
    responses((status = 200, description = "The counts and a page of check-ins", body = CheckinList)))]
pub async fn list(
    State(app): State<AppState>,
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<CheckinList>, ApiError> {
    access.show(&app.db, id).await?;
    let limit = page.limit()?;
    let after = page
        .cursor::<AtCursor>()?
        .map(|AtCursor(us, b)| crate::pagination::from_unix_micros(us).map(|t| (t, b)))
        .transpose()?;
    let (checked_in, total, checked_in_seats, total_seats): (i64, i64, i64, i64) = sqlx::query_as(
        "select count(c.booking_id), count(*),
                coalesce(sum(cardinality(b.seats)) filter (where c.booking_id is not null), 0)::bigint,
                coalesce(sum(cardinality(b.seats)), 0)::bigint
           from bookings b left join checkins c on c.booking_id = b.id
          where b.show_id = $1 and (b.status = 'confirmed' or c.booking_id is not null)",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await?;
    let rows: Vec<CheckinRow> = sqlx::query_as(
        "select booking_id, seats, checked_in_at, gate, source from checkins
          where show_id = $1 and ($2::timestamptz is null or (checked_in_at, booking_id) > ($2, $3))
          order by checked_in_at, booking_id limit $4",
    )
    .bind(id)
    .bind(after.map(|(t, _)| t))
    .bind(after.map(|(_, b)| b).unwrap_or_default())
    .bind(i64::from(limit) + 1)
    .fetch_all(&app.db)
    .await?;
    let page = Page::from_rows(rows, limit, |r| {
        AtCursor(crate::pagination::unix_micros(r.2), r.0)
    })
    .map(|(b, seats, at, gate, source)| CheckinItem {
        booking_id: BookingId(b),
        seats,
        checked_in_at: rfc3339(at),
        gate,
        source,
    });
    Ok(axum::Json(CheckinList {
        show_id: ShowId(id),
        checked_in,
        total,
        checked_in_seats,
        total_seats,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}
