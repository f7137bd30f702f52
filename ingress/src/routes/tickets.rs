//! E-tickets (API.md, "Bookings" and "Tickets"):
//!
//! - `GET /v1/bookings/{id}/ticket` (owner or staff): `{booking_id, token,
//!   qr_png_base64}`, or the PNG alone with `Accept: image/png`; 404 for someone
//!   else's booking, 409 when the booking is not confirmed.
//! - `GET /v1/tickets/verify?token=` (operator or admin): `{valid, reason,
//!   booking_id, show_id, seats}`. A token whose signature does not check (tampered,
//!   malformed, unknown key) answers `200` with `valid: false` and a `reason`, so a
//!   gate scanner has one shape to read; `valid: true` needs a good signature AND the
//!   booking still confirmed.
//! - `GET /v1/tickets/keys` (public): the Ed25519 public keys by key id, for
//!   scanners that verify offline (format in `tickets/TICKETS.md`).
//!
//! The token of a booking is derived from its `booking.confirmed` event alone
//! (Ed25519 signatures are deterministic), so this endpoint and the email give the
//! same token and the same PNG.

use crate::auth::Caller;
use crate::extract::{ApiPath, ApiQuery};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use contracts::{BookingId, BookingStatus, EventEnvelope, ShowId};
use serde::{Deserialize, Serialize};
use tickets::{PublicKey, TicketClaims, TicketError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub booking_id: BookingId,
    pub token: String,
    pub qr_png_base64: String,
}

fn wants_png(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("image/png")))
}

/// The e-ticket of a confirmed booking: JSON, or the QR code alone with
/// `Accept: image/png`.
#[utoipa::path(
    get,
    path = "/v1/bookings/{booking_id}/ticket",
    tag = "tickets",
    security(("bearer" = [])),
    params(("booking_id" = Uuid, Path, description = "The booking id")),
    responses(
        (status = 200, description = "The ticket", content(
            (TicketView = "application/json"),
            (Vec<u8> = "image/png"),
        )),
        (status = 409, description = "The booking is not confirmed (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(app, caller, headers), fields(booking_id = %id))]
pub async fn ticket(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("booking {id} does not exist"));
    let row: Option<(Uuid, Uuid, String)> =
        sqlx::query_as("select user_id, show_id, status from bookings where id = $1")
            .bind(id)
            .fetch_optional(&app.db)
            .await?;
    let (user, show, status) = row.ok_or_else(not_found)?;
    if user != caller.user_id.0
        && !crate::scope::reads_others_bookings(&app.scopes, &app.db, caller, show).await?
    {
        return Err(not_found());
    }
    if platform::db::parse_text::<BookingStatus>(&status)? != BookingStatus::Confirmed {
        return Err(ApiError::Conflict(format!(
            "booking {id} is {status}; only a confirmed booking has a ticket"
        )));
    }
    let payload: Option<serde_json::Value> = sqlx::query_scalar(
        "select payload from booking_events
          where booking_id = $1 and type = 'booking.confirmed'
          order by seq desc limit 1",
    )
    .bind(id)
    .fetch_optional(&app.db)
    .await?;
    let claims = payload
        .and_then(|p| serde_json::from_value::<EventEnvelope>(p).ok())
        .and_then(|env| TicketClaims::from_confirmed(&env))
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "confirmed booking {id} has no confirmed event"
            ))
        })?;
    let token = app.ticket_keys()?.sign(&claims);
    let png = tickets::qr_png(&token).map_err(ApiError::Internal)?;
    if wants_png(&headers) {
        let mut res = png.into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        return Ok(res);
    }
    Ok(axum::Json(TicketView {
        booking_id: BookingId(id),
        token,
        qr_png_base64: base64::engine::general_purpose::STANDARD.encode(png),
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// The ticket token (from the QR code).
    pub token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Verdict {
    pub valid: bool,
    /// Why not valid: `malformed`, `unknown_key`, `bad_signature`,
    /// `booking_not_found`, or `booking_<status>` (e.g. `booking_cancelled`); null
    /// when valid.
    pub reason: Option<String>,
    /// What the token claims (null when its signature does not check).
    pub booking_id: Option<BookingId>,
    pub show_id: Option<ShowId>,
    pub seats: Option<Vec<String>>,
    pub kid: Option<String>,
}

/// Verifies a ticket token at the gate (operator or admin). A token that does not
/// check answers `valid: false` with a reason.
#[utoipa::path(
    get,
    path = "/v1/tickets/verify",
    tag = "tickets",
    security(("bearer" = [])),
    params(VerifyQuery),
    responses((status = 200, description = "The verdict", body = Verdict))
)]
#[tracing::instrument(skip_all)]
pub async fn verify(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> Result<axum::Json<Verdict>, ApiError> {
    if !caller.is_staff() {
        return Err(ApiError::Forbidden);
    }
    let token = q
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the token query parameter is required".into()))?;
    let claims = match app.ticket_keys()?.verify(&token) {
        Ok(c) => c,
        Err(e) => {
            let reason = match e {
                TicketError::Malformed => "malformed",
                TicketError::UnknownKey(_) => "unknown_key",
                TicketError::BadSignature => "bad_signature",
            };
            return Ok(axum::Json(Verdict {
                valid: false,
                reason: Some(reason.into()),
                booking_id: None,
                show_id: None,
                seats: None,
                kid: None,
            }));
        }
    };
    // A theater-scoped admin verifies only its theaters' tickets.
    if !crate::scope::reads_others_bookings(&app.scopes, &app.db, caller, claims.sid.0).await? {
        return Err(ApiError::Forbidden);
    }
    let row: Option<(Uuid, String)> =
        sqlx::query_as("select show_id, status from bookings where id = $1")
            .bind(claims.bid.0)
            .fetch_optional(&app.db)
            .await?;
    let reason = match row {
        None => Some("booking_not_found".to_owned()),
        Some((show, _)) if show != claims.sid.0 => Some("show_mismatch".to_owned()),
        Some((_, status)) => match platform::db::parse_text::<BookingStatus>(&status)? {
            BookingStatus::Confirmed => None,
            other => Some(format!("booking_{other}")),
        },
    };
    Ok(axum::Json(Verdict {
        valid: reason.is_none(),
        reason,
        booking_id: Some(claims.bid),
        show_id: Some(claims.sid),
        seats: Some(claims.seats),
        kid: Some(claims.kid),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeySet {
    pub current_kid: String,
    /// `{kid, alg: "Ed25519", public_key: base64url}` per key.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<PublicKey>,
    /// A reminder of the format (details in `tickets/TICKETS.md`).
    pub token_format: &'static str,
}

/// The Ed25519 public keys that sign tickets, for scanners that verify offline.
#[utoipa::path(
    get,
    path = "/v1/tickets/keys",
    tag = "tickets",
    responses((status = 200, description = "The public keys", body = KeySet))
)]
pub async fn public_keys(State(app): State<AppState>) -> Result<axum::Json<KeySet>, ApiError> {
    let k = app.ticket_keys()?;
    Ok(axum::Json(KeySet {
        current_kid: k.current_kid().to_owned(),
        keys: k.public_keys(),
        token_format: "base64url(json payload {kid,bid,sid,seats,iat}) '.' base64url(ed25519 signature of the first segment's ASCII bytes); no padding",
    }))
}

/// Tickets and their verification.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ticket))
        .routes(routes!(verify))
        .routes(routes!(public_keys))
}
