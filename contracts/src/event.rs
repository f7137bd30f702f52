//! Events: the outcomes the sequencer commits to `booking_events` and publishes on
//! the `booking.events` exchange (routing key = [`Event::routing_key`]), and one
//! that is not a transition: [`Event::ShowReminder`], which the workers' reminder
//! sweep writes to the same outbox for the notifier.

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
    /// A confirmed booking's show starts soon: the reminder the notifier sends
    /// (`notifier.reminder_before_secs` ahead). Not a transition and not from the
    /// sequencer: the workers' reminder sweep writes it to the outbox (never to
    /// `booking_events`) with the ids of [`EventEnvelope::reminder`].
    ShowReminder {
        user_id: UserId,
        seats: Vec<SeatId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        zones: Vec<ZonePlaces>,
        /// When the show starts, as the sweep saw it: a reminder for a show since
        /// moved to another time is not sent (the new time gets its own).
        starts_at: Millis,
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
            Event::ShowReminder { .. } => "booking.reminder",
        }
    }
}

/// What a reminder is about: a confirmed booking of a show starting at `starts_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub show_id: ShowId,
    pub booking_id: BookingId,
    pub user_id: UserId,
    pub seats: Vec<SeatId>,
    pub zones: Vec<ZonePlaces>,
    pub starts_at: Millis,
}

impl EventEnvelope {
    /// The reminder event of `r`, made at `now`. Its ids are fixed by (booking,
    /// show start): sweeping again, from any process, makes the same event, which
    /// the notifier sends once per channel; a show moved to another time gets a
    /// reminder of its own.
    pub fn reminder(r: Reminder, now: Millis) -> Self {
        let caused_by =
            MessageId::for_booking(r.booking_id, &format!("reminder-{}", r.starts_at.0));
        Self {
            event_id: EventId::derive(caused_by, 0),
            show_id: r.show_id,
            booking_id: r.booking_id,
            occurred_at: now,
            caused_by,
            trace: None,
            event: Event::ShowReminder {
                user_id: r.user_id,
                seats: r.seats,
                zones: r.zones,
                starts_at: r.starts_at,
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn reminder(starts_at: i64) -> Reminder {
        Reminder {
            show_id: ShowId(Uuid::from_u128(1)),
            booking_id: BookingId(Uuid::from_u128(2)),
            user_id: UserId(Uuid::from_u128(3)),
            seats: vec![SeatId::try_from("A1".to_owned()).unwrap()],
            zones: vec![],
            starts_at: Millis(starts_at),
        }
    }

    #[test]
    fn a_reminder_has_the_same_ids_whenever_it_is_made_and_new_ones_for_a_moved_show() {
        let a = EventEnvelope::reminder(reminder(1_800_000_000_000), Millis(1));
        let b = EventEnvelope::reminder(reminder(1_800_000_000_000), Millis(2));
        assert_eq!((a.event_id, a.caused_by), (b.event_id, b.caused_by));
        let moved = EventEnvelope::reminder(reminder(1_800_003_600_000), Millis(1));
        assert_ne!(a.event_id, moved.event_id);
        let other = EventEnvelope::reminder(
            Reminder {
                booking_id: BookingId(Uuid::from_u128(9)),
                ..reminder(1_800_000_000_000)
            },
            Millis(1),
        );
        assert_ne!(a.event_id, other.event_id);
        assert_eq!(a.event.routing_key(), "booking.reminder");
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["event"]["type"], "show_reminder", "{json}");
        assert_eq!(
            serde_json::from_value::<EventEnvelope>(json).unwrap(),
            a,
            "round trip"
        );
    }
}
