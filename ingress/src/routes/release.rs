//! `POST /v1/bookings/{id}/release` (API.md, Round 2 "Bookings"): the buyer gives a
//! held booking back; its seats return to sale at once and it ends `released`.

use crate::AppState;
use crate::auth::Caller;
use crate::extract::ApiPath;
use crate::problem::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::{BookingId, BookingStatus, Command, CommandEnvelope, MessageId, ShowId};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Releases a `held` booking (its owner only): the sequencer frees its seats in
/// order with everything else on the show, and the booking ends `released`. A
/// booking whose payment is in flight is `409 payment_in_progress` (the gateway
/// decides it: a capture must find its seats); any other status is
/// `409 not_releasable`.
#[utoipa::path(
    post,
    path = "/v1/bookings/{booking_id}/release",
    tag = "bookings",
    security(("bearer" = [])),
    params(("booking_id" = Uuid, Path, description = "The booking id")),
    responses(
        (status = 202, description = "Release queued; the seats are free within a sequencer batch; poll the booking", body = Object),
        (status = 404, description = "No such booking of the caller (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not held: `payment_in_progress` while a payment is in flight, else `not_releasable` (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(app, caller), fields(booking_id = %id))]
pub async fn release(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("booking {id} does not exist"));
    let row: Option<(Uuid, Uuid, String)> =
        sqlx::query_as("select user_id, show_id, status from bookings where id = $1")
            .bind(id)
            .fetch_optional(&app.db)
            .await?;
    // The owner's alone: anyone else (staff too) learns nothing of it.
    let (show, status) = match row {
        Some((user, show, status)) if user == caller.user_id.0 => (
            ShowId(show),
            platform::db::parse_text::<BookingStatus>(&status)?,
        ),
        _ => return Err(not_found()),
    };
    match status {
        BookingStatus::Held => {}
        BookingStatus::PaymentPending => {
            return Err(ApiError::PaymentInProgress(format!(
                "booking {id} has a payment in flight: it cannot be released until the payment succeeds or fails"
            )));
        }
        other => {
            return Err(ApiError::NotReleasable(format!(
                "booking {id} is {other}: only a held booking can be released"
            )));
        }
    }
    let booking = BookingId(id);
    let env = CommandEnvelope::new(
        MessageId::for_booking(booking, "release"),
        show,
        platform::now_millis(),
        Command::ReleaseBooking {
            booking_id: booking,
        },
    )
    .with_trace(platform::trace::current());
    app.commands
        .send(&env)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    tracing::info!(booking_id = %booking, "release accepted");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(
            json!({"booking_id": id, "status": "held", "status_url": format!("/v1/bookings/{id}")}),
        ),
    )
        .into_response())
}

/// `/v1/bookings/{booking_id}/release`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(release))
}
