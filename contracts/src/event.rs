//! Events: the outcomes the sequencer commits to `booking_events` and publishes on
//! the `booking.events` exchange (routing key = [`Event::routing_key`]).

use crate::Millis;
use crate::ids::{BookingId, EventId, MessageId, SeatId, ShowId, UserId};
use crate::layout::ZonePlaces;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: EventId,
    pub show_id: ShowId,
    pub booking_id: BookingId,
    /// The command's `issued_at`.
    pub occurred_at: Millis,
    /// The message id of the command that caused the event.
    pub caused_by: MessageId,
    /// The trace of the command that caused the event, passed on to whoever reacts
    /// to it (saga, notifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::TraceParent>,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    BookingHeld {
        user_id: UserId,
        seats: Vec<SeatId>,
        amount: i64,
        currency: String,
        hold_expires_at: Millis,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_method: Option<String>,
        /// General-admission places taken, by zone id order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        zones: Vec<ZonePlaces>,
    },
    BookingRejected {
        user_id: UserId,
        reason: RejectReason,
    },
    BookingExpired {
        seats: Vec<SeatId>,
    },
    HoldReleased {
        seats: Vec<SeatId>,
        reason: String,
    },
    /// The buyer gave the held seats back: `held -> released`, seats freed.
    BookingReleased {
        seats: Vec<SeatId>,
    },
    /// A payment was created for the hold: `held -> payment_pending`.
    PaymentPending {
        payment_id: String,
    },
    /// Paid: `held | payment_pending -> confirmed`, or an expired booking whose
    /// seats were still free taken again (`retaken`).
    BookingConfirmed {
        user_id: UserId,
        seats: Vec<SeatId>,
        amount: i64,
        currency: String,
        payment_id: String,
        retaken: bool,
        /// General-admission places, by zone id order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        zones: Vec<ZonePlaces>,
    },
    /// A payment attempt was declined while the hold lasts:
    /// `payment_pending -> held` (or `held` stays `held`), the seats stay taken and
    /// another attempt may follow.
    PaymentDeclined {
        payment_id: String,
        reason: String,
    },
    /// Paying can no longer succeed: `held | payment_pending -> failed`, seats
    /// freed (an attempt failed after the hold ran out, or a hold ran out after a
    /// decline).
    PaymentFailed {
        seats: Vec<SeatId>,
        payment_id: String,
        reason: String,
    },
    /// Money arrived that no ticket will use: for a booking that can no longer have
    /// its seats (resold after its hold expired, released, show off sale), or a
    /// second capture of a booking already paid (`duplicate_payment`). The saga
    /// refunds `amount` of `payment_id`.
    LatePaymentRefused {
        payment_id: String,
        amount: i64,
        currency: String,
        reason: String,
    },
    /// `confirmed -> cancelled`, seats back on sale; the saga refunds `refund_amount`.
    BookingCancelled {
        seats: Vec<SeatId>,
        payment_id: String,
        refund_amount: i64,
        currency: String,
        /// The theater cancelled the show (the refund is in full), rather than the
        /// buyer their booking.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        by_theater: bool,
    },
    /// `cancelled -> refunded` (or a late payment refunded).
    BookingRefunded {
        refund_id: String,
        amount: i64,
    },
}

impl Event {
    pub fn routing_key(&self) -> &'static str {
        match self {
            Event::BookingHeld { .. } => "booking.held",
            Event::BookingRejected { .. } => "booking.rejected",
            Event::BookingExpired { .. } => "booking.expired",
            Event::HoldReleased { .. } => "booking.released",
            Event::BookingReleased { .. } => "booking.released_by_buyer",
            Event::PaymentDeclined { .. } => "booking.payment_declined",
            Event::PaymentPending { .. } => "booking.payment_pending",
            Event::BookingConfirmed { .. } => "booking.confirmed",
            Event::PaymentFailed { .. } => "booking.payment_failed",
            Event::LatePaymentRefused { .. } => "booking.late_payment_refused",
            Event::BookingCancelled { .. } => "booking.cancelled",
            Event::BookingRefunded { .. } => "booking.refunded",
        }
    }
}

/// Why a hold was refused. The `code` words are part of the public API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RejectReason {
    /// At least one chosen seat is held, sold or blocked.
    SeatUnavailable { seats: Vec<SeatId> },
    /// Not enough free seats (of the asked type) for a best-available request.
    NotEnoughSeats { available: u32 },
    /// Fewer places left in general-admission zone `zone` than asked for.
    NotEnoughPlaces { zone: String, available: u32 },
    /// A chosen seat is not in the layout, a seat type is unknown, a count is out of range.
    InvalidRequest { detail: String },
    /// The show is not on sale (cancelled, started, or unknown to the sequencer).
    NotOnSale,
    /// The user would hold or own more tickets for this show than its event allows
    /// (`limit`), counting what they hold or bought already (`already`).
    LimitPerUser { limit: u32, already: u32 },
}

impl RejectReason {
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::SeatUnavailable { .. } => "seat_unavailable",
            RejectReason::NotEnoughSeats { .. } => "not_enough_seats",
            RejectReason::NotEnoughPlaces { .. } => "not_enough_places",
            RejectReason::InvalidRequest { .. } => "invalid_request",
            RejectReason::NotOnSale => "not_on_sale",
            RejectReason::LimitPerUser { .. } => "limit_per_user",
        }
    }
}
