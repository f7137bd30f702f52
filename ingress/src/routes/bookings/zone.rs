//! The general-admission part of `POST /v1/bookings`: `{zone, quantity}`, with
//! chosen `seats` too where the layout sets `mixed_booking`. Checked here against
//! the cached layout so that a bad request is a 422 that changes nothing; the
//! sequencer decides capacity in the show's partition.

use super::{SubmitBooking, parse_seats};
use crate::problem::ApiError;
use contracts::{MAX_SEATS_PER_BOOKING, SeatRequest};

/// The zone request of `body` (whose `zone` is `zone`), or a 422 saying why not.
pub fn parse(
    body: &SubmitBooking,
    zone: &str,
    show: &crate::shows::CachedShow,
) -> Result<SeatRequest, ApiError> {
    let invalid = |m: String| Err(ApiError::Validation(m));
    let layout = &show.screen.layout;
    if layout.zone(zone).is_none() {
        let known: Vec<&str> = layout.zones.iter().map(|z| z.id.as_str()).collect();
        return invalid(format!(
            "zone {zone:?} is not at this show (its zones are {known:?})"
        ));
    }
    if body.seat_type.is_some() {
        return invalid("seat_type does not go with zone: a zone has one seat type".into());
    }
    let Some(quantity) = body.quantity else {
        return invalid("zone needs quantity, the number of places (e.g. 2)".into());
    };
    let seats = body.seats.as_deref().unwrap_or_default();
    if !seats.is_empty() && !layout.mixed_booking {
        return invalid(
            "this show's layout does not combine seats and zone places in one booking".into(),
        );
    }
    let total = usize::try_from(quantity)
        .unwrap_or(usize::MAX)
        .saturating_add(seats.len());
    if quantity == 0 || total > MAX_SEATS_PER_BOOKING {
        return invalid(format!(
            "quantity must be at least 1, and places and seats together 1 to {MAX_SEATS_PER_BOOKING}"
        ));
    }
    Ok(SeatRequest::Zone {
        zone: zone.to_owned(),
        quantity,
        seats: parse_seats(seats, show)?,
    })
}
