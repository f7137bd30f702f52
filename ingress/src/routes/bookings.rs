//! `POST /v1/bookings` and `GET /v1/bookings/{id}` (API.md, "Bookings").

mod zone;

use crate::accepted::{self, QueuedMarker};
use crate::auth::Caller;
use crate::extract::{ApiJson, ApiPath};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::timefmt::rfc3339;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contracts::{
    BookingId, BookingStatus, Command, CommandEnvelope, HoldSeats, IdempotencyKey,
    MAX_SEATS_PER_BOOKING, MessageId, PaymentMethod, SeatId, SeatRequest, ShowId, UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The body of `POST /v1/bookings`. Unknown fields are refused so that a typo
/// (`"seat": [...]`) is a clear 422, not a silently different request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"show_id": "0193a000-0000-7000-8000-000000000001", "seats": ["A1", "A2"], "payment_method": "pm_card_ok"}))]
pub struct SubmitBooking {
    pub show_id: Uuid,
    /// Chosen seats (`["A1", "A2"]`); or give `quantity` for the best available.
    /// With `zone`, only where the layout sets `mixed_booking` (all or nothing).
    #[serde(default)]
    pub seats: Option<Vec<String>>,
    /// How many seats to pick (best available, adjacent where possible); with
    /// `zone`, how many places of the zone.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10)]
    pub quantity: Option<u32>,
    /// A general-admission zone of the layout (`"floor"`): book `quantity` places
    /// of it. Seats and places together count at most 10.
    #[serde(default)]
    pub zone: Option<String>,
    /// With `quantity`: only seats of this type.
    #[serde(default)]
    pub seat_type: Option<String>,
    /// Pay at once with this method (`pm_card_ok`, ...); without it the booking is
    /// held until paid through `POST /v1/bookings/{id}/payment`.
    #[serde(default)]
    pub payment_method: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub booking_id: BookingId,
    pub status: BookingStatus,
    pub status_url: String,
}

/// The optional payment method of a booking request, checked by
/// [`contracts::PaymentMethod`]'s rule (a card number is `card_number_refused`).
fn parse_payment_method(pm: Option<String>) -> Result<Option<String>, ApiError> {
    pm.map(|pm| {
        PaymentMethod::try_from(pm)
            .map(PaymentMethod::into_string)
            .map_err(ApiError::from)
    })
    .transpose()
}

/// Parses the body into a seat request checked against the show's layout.
fn parse_request(
    body: &SubmitBooking,
    show: &crate::shows::CachedShow,
) -> Result<SeatRequest, ApiError> {
    if let Some(zone) = &body.zone {
        return zone::parse(body, zone, show);
    }
    match (&body.seats, body.quantity) {
        (Some(_), Some(_)) => Err(ApiError::Validation(
            "send either seats or quantity, not both".into(),
        )),
        (None, None) => Err(ApiError::Validation(
            "send seats (e.g. [\"A1\",\"A2\"]) or quantity (e.g. 2)".into(),
        )),
        (Some(seats), None) => {
            if body.seat_type.is_some() {
                return Err(ApiError::Validation(
                    "seat_type goes with quantity, not with chosen seats".into(),
                ));
            }
            if seats.is_empty() || seats.len() > MAX_SEATS_PER_BOOKING {
                return Err(ApiError::Validation(format!(
                    "seats must list 1 to {MAX_SEATS_PER_BOOKING} seats"
                )));
            }
            Ok(SeatRequest::Chosen {
                seats: parse_seats(seats, show)?,
            })
        }
        (None, Some(q)) => {
            let quantity = u8::try_from(q)
                .ok()
                .filter(|q| (1..=MAX_SEATS_PER_BOOKING).contains(&usize::from(*q)))
                .ok_or_else(|| {
                    ApiError::Validation(format!("quantity must be 1 to {MAX_SEATS_PER_BOOKING}"))
                })?;
            if let Some(t) = &body.seat_type
                && !show.info.prices.iter().any(|p| &p.seat_type == t)
            {
                let known: Vec<&str> = show
                    .info
                    .prices
                    .iter()
                    .map(|p| p.seat_type.as_str())
                    .collect();
                return Err(ApiError::Validation(format!(
                    "seat_type {t:?} is not sold at this show (it sells {known:?})"
                )));
            }
            Ok(SeatRequest::BestAvailable {
                quantity,
                seat_type: body.seat_type.clone(),
            })
        }
    }
}

/// Chosen seat ids: well formed, distinct, in the layout and for sale.
pub(super) fn parse_seats(
    seats: &[String],
    show: &crate::shows::CachedShow,
) -> Result<Vec<SeatId>, ApiError> {
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(seats.len());
    for s in seats {
        let id = SeatId::try_from(s.clone()).map_err(|e| ApiError::Validation(e.to_string()))?;
        if !seen.insert(id.clone()) {
            return Err(ApiError::Validation(format!("seat {id} is listed twice")));
        }
        match show.screen.seats.get(&id) {
            None => {
                return Err(ApiError::Validation(format!(
                    "seat {id} does not exist at this show"
                )));
            }
            Some(seat) if seat.blocked => {
                return Err(ApiError::Validation(format!("seat {id} is not for sale")));
            }
            Some(_) => {}
        }
        ids.push(id);
    }
    Ok(ids)
}

fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let raw = headers
        .get("idempotency-key")
        .ok_or_else(|| {
            ApiError::BadRequest(
                "the Idempotency-Key header is required (any unique string per booking attempt)"
                    .into(),
            )
        })?
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?;
    IdempotencyKey::try_from(raw).map_err(|e| ApiError::BadRequest(e.into()))
}

/// The request id (made valid by the router's request id layers; checked again
/// here because it travels in the AMQP headers).
fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(contracts::topology::REQUEST_ID_HEADER)
        .filter(|v| contracts::topology::is_valid_request_id(v.as_bytes()))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Books seats: answered `202` once the request is durably queued; the sequencer
/// decides it in order with every other request for the show.
#[utoipa::path(
    post,
    path = "/v1/bookings",
    tag = "bookings",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Any unique string per booking attempt; the same key from the same user gives the same booking")),
    request_body = SubmitBooking,
    responses(
        (status = 202, description = "Accepted and queued; poll `status_url`", body = Accepted,
         headers(("Location" = String, description = "The booking's URL"))),
        (status = 403, description = "A payment method was given, `auth.require_verified_email_to_pay` is on and the email is not verified (problem+json, `email_not_verified`)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The show is not on sale (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (an unknown `zone`, a `quantity` out of range, seats with a zone where the layout does not mix them, ...); `card_number_refused` when `payment_method` looks like a card number (only gateway tokens are accepted; the number is never stored, logged or echoed) (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(booking_id, show_id = %body.show_id, user_id = %caller.user_id))]
pub async fn submit(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubmitBooking>,
) -> Result<Response, ApiError> {
    // First, so a card number goes nowhere (not even into a marker or a log).
    let payment_method = parse_payment_method(body.payment_method.clone())?;
    let key = idempotency_key(&headers)?;
    let show_id = ShowId(body.show_id);
    let show = app
        .shows
        .get(show_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("show {show_id} does not exist")))?;
    let now = platform::now_millis();
    if !show.info.on_sale_at(now) {
        return Err(ApiError::ShowNotOnSale(format!(
            "show {show_id} is not on sale (status {}, or it has started)",
            show.info.status
        )));
    }
    let request = parse_request(&body, &show)?;
    if payment_method.is_some() {
        caller.may_pay(&app.settings.auth, &app.db).await?;
    }

    let booking_id = BookingId::derive(caller.user_id, &key);
    tracing::Span::current().record("booking_id", tracing::field::display(booking_id));
    let fingerprint = format!(
        "{show_id}|{}|{}",
        serde_json::to_string(&request).unwrap_or_default(),
        payment_method.as_deref().unwrap_or("")
    );

    // The queued marker: catches a key reused for a different request, and lets GET
    // answer `queued` before the sequencer decides. Redis may be lost: on error we
    // go on (the durable record of acceptance is written below, in PostgreSQL).
    let marker = QueuedMarker {
        user_id: caller.user_id,
        show_id,
        seats: match &request {
            SeatRequest::Chosen { seats } | SeatRequest::Zone { seats, .. } => seats.clone(),
            SeatRequest::BestAvailable { .. } => vec![],
        },
        fingerprint: fingerprint.clone(),
        created_at: now,
    };
    let marker_key = app.keys.queued(booking_id);
    let mut redis = app.redis.clone();
    let set: Result<Option<String>, redis::RedisError> = redis::cmd("SET")
        .arg(&marker_key)
        .arg(serde_json::to_string(&marker).unwrap_or_default())
        .arg("NX")
        .arg("GET")
        .arg("EX")
        .arg(app.settings.redis.queued_marker_ttl_secs)
        .query_async(&mut redis)
        .await;
    match set {
        Ok(Some(previous)) => {
            if let Ok(prev) = serde_json::from_str::<QueuedMarker>(&previous)
                && prev.fingerprint != fingerprint
            {
                return Err(ApiError::IdempotencyKeyReused(
                    "this Idempotency-Key was already used for a different booking request".into(),
                ));
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "redis unavailable; queued marker not written"),
    }

    // Always publish, even for a retry: the message id is fixed by the booking, so
    // the sequencer's inbox applies it once, and a retry after a lost publish heals.
    let envelope = CommandEnvelope::new(
        MessageId::for_booking(booking_id, "hold"),
        show_id,
        now,
        Command::HoldSeats(HoldSeats {
            booking_id,
            user_id: caller.user_id,
            request,
            hold_ttl_ms: i64::try_from(app.settings.ingress.hold_ttl_secs * 1000)
                .unwrap_or(i64::MAX),
            payment_method,
        }),
    )
    .with_request_id(request_id(&headers))
    .with_trace(platform::trace::current());
    let started = std::time::Instant::now();
    app.commands
        .send(&envelope)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    metrics::histogram!("ingress_publish_confirm_seconds").record(started.elapsed().as_secs_f64());
    // No 202 without its durable record: GET answers `queued` from it whatever Redis
    // lost (see [`accepted`]).
    accepted::record(&app.accepted, booking_id, &marker).await?;
    tracing::info!(
        booking_id = %booking_id,
        request_id = envelope.request_id.as_deref().unwrap_or(""),
        trace_id = %platform::trace::current_id(),
        partition = app.topology.partition_of(show_id),
        "booking accepted"
    );

    let status_url = format!("/v1/bookings/{booking_id}");
    let mut res = (
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            booking_id,
            status: BookingStatus::Queued,
            status_url: status_url.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(app.settings.ingress.poll_interval_secs),
    );
    Ok(res)
}

/// The booking resource of `GET /v1/bookings/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    pub booking_id: BookingId,
    pub user_id: UserId,
    pub show_id: ShowId,
    pub status: BookingStatus,
    pub seats: Vec<String>,
    /// General-admission places (`[{"zone": "floor", "quantity": 2}]`); empty for
    /// a seats-only booking and while `queued`.
    pub zones: Vec<contracts::ZonePlaces>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub hold_expires_at: Option<String>,
    /// The payment the booking stands on (the captured attempt once paid, else the
    /// latest), or null before any: `{status, payment_id, method, attempts,
    /// decline_reason, refund_status, refund_amount}`. After a decline the
    /// booking is `held` again with `status: "failed"` and the gateway's
    /// `decline_reason`, and `POST /v1/bookings/{id}/payment` tries another method.
    pub payment: Option<serde_json::Value>,
    /// Why the booking ended where it did (`seat_unavailable`, `not_enough_seats`,
    /// `invalid_request`, `not_on_sale`, `hold_expired`, ...), or null.
    pub reason: Option<String>,
    /// Details of the reason (e.g. which seats were unavailable), or null.
    pub reason_detail: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
    /// What cancelling would cost, for a confirmed booking (shown to the buyer before
    /// they cancel); null otherwise.
    pub cancellation: Option<CancellationTerms>,
}

/// The cancellation fee the theater keeps and the refund, in minor units.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancellationTerms {
    pub fee: i64,
    pub refund: i64,
    pub currency: String,
}

impl CancellationTerms {
    /// The sequencer's rule ([`contracts::Money::split_fee`]): the fee is
    /// `fee_permille` of the amount, rounded down; the rest is refunded.
    fn of(amount: i64, currency: &str, fee_permille: u16) -> Self {
        let (fee, refund) = contracts::Money::new(amount, currency).split_fee(fee_permille);
        Self {
            fee: fee.amount,
            refund: refund.amount,
            currency: refund.currency,
        }
    }
}

type BookingRow = (
    Uuid,
    Uuid,
    Uuid,
    String,
    Vec<String>,
    i64,
    Option<String>,
    Option<OffsetDateTime>,
    Option<serde_json::Value>,
    OffsetDateTime,
    OffsetDateTime,
    Option<serde_json::Value>,
    sqlx::types::Json<Vec<contracts::ZonePlaces>>,
);

/// The booking's state (owner, admin or operator; anyone else gets 404).
#[utoipa::path(
    get,
    path = "/v1/bookings/{booking_id}",
    tag = "bookings",
    security(("bearer" = [])),
    params(("booking_id" = Uuid, Path, description = "The booking id")),
    responses(
        (status = 200, description = "The booking; `Retry-After` suggests the polling interval while it is not final. A booking answered `202` is `queued` until the sequencer has decided it (ingress records every acceptance durably), never `404`", body = BookingView),
        (status = 404, description = "No such booking, or someone else's (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(app, caller), fields(booking_id = %id))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let booking_id = BookingId(id);
    let not_found = || ApiError::NotFound(format!("booking {booking_id} does not exist"));
    let row: Option<BookingRow> = sqlx::query_as(
        "select b.id, b.user_id, b.show_id, b.status, b.seats, b.amount, b.currency,
                b.hold_expires_at, b.reason, b.created_at, b.updated_at,
                (select jsonb_strip_nulls(jsonb_build_object(
                    'status', p.status, 'payment_id', p.payment_id, 'method', p.method,
                    -- `refunded` is recorded only once the gateway said the refund
                    -- succeeded (the saga sends `RefundCompleted` before it marks
                    -- its row): the row may not say so yet, the booking does.
                    'refund_status', case when b.status = 'refunded' and p.refund_status = 'requested'
                                          then 'succeeded' else p.refund_status end,
                    'refund_amount', p.refund_amount,
                    'decline_reason', case when p.status in ('failed', 'canceled')
                                           then coalesce(p.failure_reason, p.status) end,
                    'attempts', (select count(*) from payments a where a.booking_id = b.id)))
                   from payments p where p.booking_id = b.id
                  -- The captured attempt the booking stands on, else the latest.
                  order by (p.status = 'succeeded' and p.payment_id = b.payment_id) desc nulls last,
                           p.attempt desc
                  limit 1),
                b.zones
           from bookings b
          where b.id = $1",
    )
    .bind(id)
    .fetch_optional(&app.db)
    .await?;
    let view = match row {
        Some((
            id,
            user,
            show,
            status,
            seats,
            amount,
            currency,
            expires,
            reason,
            created,
            updated,
            payment,
            zones,
        )) => {
            let status: BookingStatus = status
                .parse()
                .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?;
            let (reason, reason_detail) = match reason {
                Some(serde_json::Value::Object(mut m)) => {
                    let code = m.remove("code").and_then(|c| c.as_str().map(str::to_owned));
                    let detail = (!m.is_empty()).then_some(serde_json::Value::Object(m));
                    (code, detail)
                }
                _ => (None, None),
            };
            let cancellation = match (&status, &currency) {
                (BookingStatus::Confirmed, Some(cur)) => Some(CancellationTerms::of(
                    amount,
                    cur,
                    app.settings.payments.cancellation_fee_permille,
                )),
                _ => None,
            };
            BookingView {
                cancellation,
                booking_id: BookingId(id),
                user_id: UserId(user),
                show_id: ShowId(show),
                status,
                seats,
                zones: zones.0,
                amount: currency.is_some().then_some(amount),
                currency,
                hold_expires_at: expires.map(rfc3339),
                payment,
                reason,
                reason_detail,
                created_at: rfc3339(created),
                updated_at: rfc3339(updated),
            }
        }
        None => {
            // Accepted and not decided yet: `queued` (never 404 for a 202).
            let q = accepted::queued(&app.db, &app.redis, &app.keys, booking_id)
                .await?
                .ok_or_else(not_found)?;
            BookingView {
                cancellation: None,
                booking_id,
                user_id: q.user_id,
                show_id: q.show_id,
                status: BookingStatus::Queued,
                seats: q.seats,
                zones: vec![],
                amount: None,
                currency: None,
                hold_expires_at: None,
                payment: None,
                reason: None,
                reason_detail: None,
                created_at: rfc3339(q.created_at),
                updated_at: rfc3339(q.created_at),
            }
        }
    };
    // Someone else's booking is not found, not forbidden: ids leak nothing.
    if view.user_id != caller.user_id
        && !crate::scope::reads_others_bookings(&app.scopes, &app.db, caller, view.show_id.0)
            .await?
    {
        return Err(not_found());
    }
    let terminal = view.status.is_terminal() || view.status == BookingStatus::Confirmed;
    let mut res = axum::Json(view).into_response();
    if !terminal {
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(app.settings.ingress.poll_interval_secs),
        );
    }
    Ok(res)
}

/// `/v1/bookings` and `/v1/bookings/{booking_id}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(get))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cancellation_fee_is_rounded_down_as_the_sequencer_rounds_it() {
        let t = CancellationTerms::of(70_001, "INR", 100);
        assert_eq!((t.fee, t.refund), (7_000, 63_001));
        let all = CancellationTerms::of(500, "INR", 1500);
        assert_eq!((all.fee, all.refund), (500, 0));
    }
}
