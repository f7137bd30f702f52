//! At the door (API.md, Round 2, "Door"): checking tickets in, online and from
//! offline scanners, the check-in list of a show, and staff's booking lookup. Roles
//! staff, admin and operator (one route layer), each call within the caller's
//! theater scope ([`crate::scope::Access`]).
//!
//! - [`checkin`]: `POST /v1/checkins` and `GET /v1/admin/shows/{id}/checkins`.
//! - [`offline`]: `GET /v1/scanner/shows/{id}/manifest` and `POST /v1/checkins/batch`.
//! - [`lookup`]: `GET /v1/admin/bookings?q=`.
//!
//! # Exactly once, and why check-in does not go through the show's partition
//!
//! A check-in is one row of `checkins`, whose primary key is the booking id: however
//! many scanners race, the database admits one row per booking, and every other scan
//! finds it (`409`, or `duplicate` in a batch).
//!
//! Check-in changes no seat and no booking status, so it does not need the
//! sequencer's ordering to keep the seat guarantees; sending it through the partition
//! queue would make every person at the gate wait for a broker round trip and a
//! sequencer batch, and stop the door whenever the partition is slow or down, while
//! the only thing to order it against is a cancellation. That race is closed in
//! PostgreSQL instead: the check-in reads the booking `FOR SHARE` in the transaction
//! that inserts the check-in, and the sequencer's batch commit updates the booking
//! row, so the two serialise on that row lock. Either the cancellation commits first
//! (the check-in then reads `cancelled` and answers `422`), or the check-in commits
//! first (the person was admitted with a ticket valid at that instant; a cancellation
//! arriving afterwards still cancels and refunds, which is the booking journey's
//! policy to decide, see the report). The lock is held for one insert: the sequencer
//! waits at most that long.

pub mod checkin;
pub mod lookup;
pub mod offline;

use crate::problem::ApiError;
use crate::scope::Access;
use crate::state::AppState;
use contracts::BookingStatus;
use tickets::{TicketClaims, TicketError};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Longest gate name.
const GATE_CHARS_MAX: usize = 64;

/// A trimmed gate name: 1 to 64 visible characters, or none.
fn gate(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(g) = raw.map(str::trim).filter(|g| !g.is_empty()) else {
        return Ok(None);
    };
    if g.chars().count() > GATE_CHARS_MAX || g.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "gate must be at most {GATE_CHARS_MAX} characters, without control characters"
        )));
    }
    Ok(Some(g.to_owned()))
}

/// The machine word of a signature failure.
fn signature_reason(e: &TicketError) -> &'static str {
    match e {
        TicketError::Malformed => "malformed",
        TicketError::UnknownKey(_) => "unknown_key",
        TicketError::BadSignature => "bad_signature",
    }
}

/// The claims of a ticket whose signature checks, or why not.
fn verified(app: &AppState, token: &str) -> Result<TicketClaims, ApiError> {
    let keys = app.ticket_keys()?;
    keys.verify(token.trim())
        .map_err(|e| ApiError::TicketNotValid {
            reason: signature_reason(&e).to_owned(),
        })
}

/// What the door needs of a booking, read `FOR SHARE` inside `tx` (see the module
/// comment: it orders the check-in against a cancellation).
struct Admission {
    show: Uuid,
    seats: Vec<String>,
}

/// Locks the ticket's booking and says whether it admits: `403` for another
/// theater's show, [`ApiError::TicketNotValid`] for a missing, mismatched or not
/// confirmed booking.
async fn admit(
    tx: &mut sqlx::PgConnection,
    access: &Access,
    claims: &TicketClaims,
) -> Result<Admission, ApiError> {
    let row: Option<(Uuid, String, Vec<String>, Uuid)> = sqlx::query_as(
        "select b.show_id, b.status, b.seats, sc.theater_id
           from bookings b join shows s on s.id = b.show_id join screens sc on sc.id = s.screen_id
          where b.id = $1
            for share of b",
    )
    .bind(claims.bid.0)
    .fetch_optional(&mut *tx)
    .await?;
    let not_valid = |reason: String| ApiError::TicketNotValid { reason };
    let (show, status, seats, theater) =
        row.ok_or_else(|| not_valid("booking_not_found".into()))?;
    access.theater(theater)?;
    if show != claims.sid.0 {
        return Err(not_valid("show_mismatch".into()));
    }
    match platform::db::parse_text::<BookingStatus>(&status)? {
        BookingStatus::Confirmed => Ok(Admission { show, seats }),
        other => Err(not_valid(format!("booking_{other}"))),
    }
}

/// A time at PostgreSQL's precision (microseconds), so what is stored compares
/// equal with what was sent.
fn micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

/// Largest body of `POST /v1/checkins/batch`: `door.batch_items_max` scans of about
/// 400 bytes each fit (the API's default body limit, 16 KiB, would hold ~40).
pub const BATCH_BODY_LIMIT_BYTES: usize = 1 << 20;

/// `POST /v1/checkins`, `POST /v1/checkins/batch`, `GET /v1/scanner/...` and the
/// door's admin reads, for staff, admins and operators.
pub fn router() -> OpenApiRouter<AppState> {
    // The route's own body limit is set inside the router-wide one, so it wins.
    let batch = OpenApiRouter::new()
        .routes(routes!(offline::batch))
        .layer(axum::extract::DefaultBodyLimit::max(BATCH_BODY_LIMIT_BYTES));
    OpenApiRouter::new()
        .routes(routes!(checkin::check_in))
        .routes(routes!(checkin::list))
        .routes(routes!(offline::manifest))
        .routes(routes!(lookup::lookup))
        .merge(batch)
        .route_layer(axum::middleware::from_fn(crate::auth::layer::door))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_is_trimmed_bounded_and_optional() {
        assert_eq!(gate(None).unwrap(), None);
        assert_eq!(gate(Some("  ")).unwrap(), None);
        assert_eq!(gate(Some(" North 2 ")).unwrap().as_deref(), Some("North 2"));
        assert!(gate(Some(&"x".repeat(65))).is_err());
        assert!(gate(Some("a\nb")).is_err());
    }

    #[test]
    fn times_are_cut_to_microseconds() {
        let t = time::macros::datetime!(2026-12-07 19:00:00.123456789 UTC);
        assert_eq!(micros(t).nanosecond(), 123_456_000);
    }
}
