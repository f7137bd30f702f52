//! Payments at the edge: the gateway's signed webhook, paying a held booking, and
//! cancelling a confirmed one (API.md, "Bookings" and "Payment webhooks").

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiPath};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use contracts::{
    BookingId, BookingStatus, Command, CommandEnvelope, MessageId, PayRequest, PaymentMethod,
    ShowId,
};
use lapin::types::FieldTable;
use payment_adapter::{SIGNATURE_HEADER, WebhookEvent, signature};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// `POST /v1/payments/webhook`: verify the signature and timestamp, record the
/// event id, hand it to the saga, mark it handed over. A delivery of an event
/// already handed over is answered 200 as a duplicate and ignored; one recorded but
/// never handed over (a crash in between) is handed over now.
#[utoipa::path(
    post,
    path = "/v1/payments/webhook",
    tag = "payments",
    params(("Gateway-Signature" = String, Header, description = "`t=<unix>,v1=<hex hmac-sha256 of \"t.body\">`")),
    request_body(content = Object, description = "`{id, type, data: {payment_id, booking_id, amount, currency, reason?}}`"),
    responses(
        (status = 200, description = "Recorded and handed to the saga (`duplicate: false`), or already handed over (`duplicate: true`, ignored). An event recorded but never handed over (ingress died in between) is handed over by the gateway's next delivery", body = Object),
        (status = 400, description = "Missing or invalid signature, stale timestamp, or not an event (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event could not be handed over; the gateway's retry will (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(event_id, booking_id))]
pub async fn webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let sig = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("the {SIGNATURE_HEADER} header is missing")))?;
    let p = &app.settings.payments;
    signature::verify(
        p.webhook_secret.expose_secret().as_bytes(),
        sig,
        &body,
        platform::now_millis().0 / 1000,
        p.webhook_tolerance_secs,
    )
    .map_err(|e| ApiError::BadRequest(format!("webhook signature refused: {e}")))?;
    let ev: WebhookEvent = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("webhook body is not an event: {e}")))?;
    tracing::Span::current().record("event_id", ev.id.as_str());
    tracing::Span::current().record("booking_id", tracing::field::display(ev.data.booking_id));

    // Record, then publish, then mark published. A crash (or a failed publish)
    // between the first and the last step leaves the row unpublished, and the
    // gateway's retry publishes it again instead of being answered a duplicate; a
    // second publish of one event is harmless (the saga asks the gateway, and its
    // commands have fixed message ids). Only a published event is a duplicate.
    let unpublished: bool = sqlx::query_scalar(
        "with ins as (
           insert into payment_webhooks (event_id, type, payment_id, booking_id, payload)
           values ($1, $2, $3, $4, $5::jsonb) on conflict (event_id) do nothing
           returning true)
         select coalesce((select true from ins),
                         (select published_at is null from payment_webhooks where event_id = $1),
                         true)",
    )
    .bind(&ev.id)
    .bind(&ev.kind)
    .bind(&ev.data.payment_id)
    .bind(ev.data.booking_id)
    .bind(String::from_utf8_lossy(&body).as_ref())
    .fetch_one(&app.db)
    .await?;
    if !unpublished {
        metrics::counter!("webhooks_total", "outcome" => "duplicate").increment(1);
        return Ok(axum::Json(json!({"received": true, "duplicate": true})).into_response());
    }
    app.publisher
        .publish(
            "",
            &app.topology.webhooks_queue(),
            &body,
            platform::amqp::json_properties(&ev.id, FieldTable::default()),
        )
        .await
        // The row stays unpublished: the gateway's retry publishes it.
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    sqlx::query("update payment_webhooks set published_at = now() where event_id = $1")
        .bind(&ev.id)
        .execute(&app.db)
        .await?;
    metrics::counter!("webhooks_total", "outcome" => "accepted").increment(1);
    tracing::info!(booking_id = %ev.data.booking_id, event_id = %ev.id, kind = %ev.kind, "webhook accepted");
    Ok(axum::Json(json!({"received": true, "duplicate": false})).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payment_method": "pm_card_ok"}))]
pub struct PayBody {
    pub payment_method: String,
}

/// The booking's owner, show and status, or 404 (also for someone else's booking).
pub(crate) async fn owned_booking(
    app: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<(ShowId, BookingStatus, time::OffsetDateTime), ApiError> {
    let row: Option<(Uuid, Uuid, String, time::OffsetDateTime)> = sqlx::query_as(
        "select b.user_id, b.show_id, b.status, s.starts_at
           from bookings b join shows s on s.id = b.show_id where b.id = $1",
    )
    .bind(id)
    .fetch_optional(&app.db)
    .await?;
    let not_found = || ApiError::NotFound(format!("booking {id} does not exist"));
    let (user, show, status, starts_at) = row.ok_or_else(not_found)?;
    if user != caller.user_id.0
        && !crate::scope::reads_others_bookings(&app.scopes, &app.db, *caller, show).await?
    {
        return Err(not_found());
    }
    Ok((ShowId(show), platform::db::parse_text(&status)?, starts_at))
}

/// Pays a `held` booking: one created without a payment method, or one whose
/// payment was declined (its seats are kept while the hold lasts); each call is a
/// new attempt with its own gateway payment.
#[utoipa::path(
    post,
    path = "/v1/bookings/{booking_id}/payment",
    tag = "bookings",
    security(("bearer" = [])),
    params(("booking_id" = Uuid, Path, description = "The booking id")),
    request_body = PayBody,
    responses(
        (status = 202, description = "Payment attempt started; poll the booking", body = Object),
        (status = 403, description = "`auth.require_verified_email_to_pay` is on and the email is not verified (problem+json, `email_not_verified`)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The booking is not held (`conflict`), or a payment of it is in flight (`payment_in_progress`; not once the latest attempt was declined, even before the booking reads `held` again) (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid method; `card_number_refused` for a card number (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn pay(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PayBody>,
) -> Result<Response, ApiError> {
    let payment_method = PaymentMethod::try_from(body.payment_method)?;
    caller.may_pay(&app.settings.auth, &app.db).await?;
    let (show, status, _) = owned_booking(&app, &caller, id).await?;
    match status {
        BookingStatus::Held => {}
        // The sequencer records an attempt's start and end after the saga, which has
        // settled a declined attempt (and sent its failure into the partition) before
        // the booking's row says so: "payment failed" can be read, and a buyer pay
        // again, while the row still says `payment_pending`. The new attempt's start
        // reaches the partition after the old one's failure, so it is taken.
        BookingStatus::PaymentPending if latest_attempt_failed(&app, id).await? => {}
        BookingStatus::PaymentPending => {
            return Err(ApiError::PaymentInProgress(format!(
                "booking {id} has a payment in flight: wait for it to succeed or fail"
            )));
        }
        other => {
            return Err(ApiError::Conflict(format!(
                "booking {id} is {other}: only a held booking can be paid"
            )));
        }
    }
    let req = PayRequest {
        booking_id: BookingId(id),
        show_id: show,
        payment_method,
        // Names this attempt: a redelivered request starts no second one.
        request_id: Some(Uuid::now_v7()),
    };
    app.commands
        .request_payment(&req)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(
            json!({"booking_id": id, "status": "held", "status_url": format!("/v1/bookings/{id}")}),
        ),
    )
        .into_response())
}

/// Whether the booking's latest payment attempt has failed for good at the saga
/// (declined or canceled at the gateway).
async fn latest_attempt_failed(app: &AppState, id: Uuid) -> Result<bool, ApiError> {
    let status: Option<String> = sqlx::query_scalar(
        "select status from payments where booking_id = $1 order by attempt desc limit 1",
    )
    .bind(id)
    .fetch_optional(&app.db)
    .await?;
    Ok(matches!(status.as_deref(), Some("failed" | "canceled")))
}

/// Cancels a `confirmed` booking before the show starts: the seats return to sale
/// and the refund (less the configured fee) runs.
#[utoipa::path(
    post,
    path = "/v1/bookings/{booking_id}/cancel",
    tag = "bookings",
    security(("bearer" = [])),
    params(("booking_id" = Uuid, Path, description = "The booking id")),
    responses(
        (status = 202, description = "Cancellation queued; poll the booking", body = Object),
        (status = 409, description = "Not cancellable (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let (show, status, starts_at) = owned_booking(&app, &caller, id).await?;
    if status != BookingStatus::Confirmed {
        return Err(ApiError::Conflict(format!(
            "booking {id} is {status}: only a confirmed booking can be cancelled"
        )));
    }
    if starts_at <= time::OffsetDateTime::now_utc() {
        return Err(ApiError::Conflict(format!(
            "the show of booking {id} has started: it can no longer be cancelled"
        )));
    }
    // Someone already came in on this ticket: it was used. This is checked here, not
    // by the sequencer (which does not see check-ins): a cancellation already queued
    // when the first scan happens still goes through, a window of the time a command
    // waits in its partition.
    let checked_in: bool =
        sqlx::query_scalar("select exists (select 1 from checkins where booking_id = $1)")
            .bind(id)
            .fetch_one(&app.db)
            .await?;
    if checked_in {
        return Err(ApiError::Conflict(format!(
            "booking {id} was checked in at the door: it can no longer be cancelled"
        )));
    }
    let booking = BookingId(id);
    let env = CommandEnvelope::new(
        MessageId::for_booking(booking, "cancel"),
        show,
        platform::now_millis(),
        Command::CancelBooking {
            booking_id: booking,
            fee_permille: app.settings.payments.cancellation_fee_permille,
        },
    )
    .with_trace(platform::trace::current());
    app.commands
        .send(&env)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"booking_id": id, "status": "confirmed", "status_url": format!("/v1/bookings/{id}")})),
    )
        .into_response())
}

/// The webhook, paying and cancelling.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(webhook))
        .routes(routes!(pay))
        .routes(routes!(cancel))
}
