//! Commands: what travels on the partition queues `booking.commands.p{N}` and is
//! applied, in queue order, by the one active sequencer of that partition.

use crate::Millis;
use crate::ids::{BookingId, MessageId, SeatId, ShowId, UserId};
use serde::{Deserialize, Serialize};

/// One message on a partition queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// Dedupe key of the sequencer's inbox.
    pub message_id: MessageId,
    /// Routes the message (`partition_of(show_id)`) and picks the show state.
    pub show_id: ShowId,
    /// When the command was issued; the only clock the sequencer ever sees.
    pub issued_at: Millis,
    /// The HTTP request that caused it, to follow one booking through every log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The trace this command belongs to (W3C `traceparent`; also in the AMQP headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::TraceParent>,
    pub command: Command,
}

impl CommandEnvelope {
    /// A command for `show`, with no request id and no trace; add them with
    /// [`CommandEnvelope::with_request_id`] and [`CommandEnvelope::with_trace`].
    pub fn new(
        message_id: MessageId,
        show_id: ShowId,
        issued_at: Millis,
        command: Command,
    ) -> Self {
        Self {
            message_id,
            show_id,
            issued_at,
            request_id: None,
            trace: None,
            command,
        }
    }

    /// The HTTP request that caused the command.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// The trace the command continues.
    pub fn with_trace(mut self, trace: Option<crate::TraceParent>) -> Self {
        self.trace = trace;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Hold seats for a new booking (chosen seats, or best available).
    HoldSeats(HoldSeats),
    /// The hold of `booking_id` ran out: release its seats if it is still only held
    /// and its expiry time has passed (by `issued_at`).
    ExpireHold { booking_id: BookingId },
    /// Release a held booking's seats now (the client or the saga gave up).
    ReleaseHold {
        booking_id: BookingId,
        reason: String,
    },
    /// The buyer gives a `held` booking back (`POST /v1/bookings/{id}/release`): its
    /// seats return to sale at once and it ends `released`. Any other status is
    /// left as it is (a payment in flight decides the booking, not the buyer).
    ReleaseBooking { booking_id: BookingId },
    /// The saga created a payment for a held booking: the seats become
    /// `payment_pending`, a semantic lock (never resold while money may move).
    PaymentStarted {
        booking_id: BookingId,
        payment_id: String,
    },
    /// The gateway says the payment succeeded (authoritative status, not just a
    /// webhook's word). Confirms the booking, or re-takes the same seats of an
    /// expired booking if they are still free, or asks for a refund.
    PaymentSucceeded {
        booking_id: BookingId,
        payment_id: String,
        amount: i64,
    },
    /// The gateway says a payment attempt failed (declined, or cancelled): while the
    /// hold lasts the booking is `held` again and another attempt may follow; once
    /// it ran out the booking fails and its seats are freed. A failure of an attempt
    /// that is not the booking's current one changes nothing.
    PaymentFailed {
        booking_id: BookingId,
        payment_id: String,
        reason: String,
    },
    /// The customer cancels a confirmed booking: seats return to sale and
    /// `amount - fee` is refunded, the fee being `fee_permille` thousandths.
    CancelBooking {
        booking_id: BookingId,
        fee_permille: u16,
    },
    /// The gateway refunded a payment of the booking. The booking ends `refunded`
    /// only when it is the refund it waits for (`payment_id` its own payment, or
    /// absent as in messages from before payment attempts); the refund of an extra
    /// capture changes nothing.
    RefundCompleted {
        booking_id: BookingId,
        refund_id: String,
        amount: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_id: Option<String>,
    },
    /// An admin cancelled the show (its database row already says so): it stops
    /// selling for good; held and payment-pending bookings are released (a payment
    /// that still succeeds afterwards is refunded) and confirmed ones are cancelled
    /// with a full refund. Repeating it changes nothing.
    CancelShow { reason: String },
    /// An admin blocked these seats for this show (the block of its screen from a
    /// time on is already in the database): from here on they are never allocated.
    /// A booking already on them keeps them (it is listed for staff to move); once
    /// freed they stay blocked. Unknown seats are ignored; repeating it changes
    /// nothing.
    BlockSeats { seats: Vec<SeatId> },
}

impl Command {
    /// The booking the command is about.
    pub fn booking_id(&self) -> BookingId {
        match self {
            Command::HoldSeats(h) => h.booking_id,
            Command::ExpireHold { booking_id }
            | Command::ReleaseHold { booking_id, .. }
            | Command::ReleaseBooking { booking_id }
            | Command::PaymentStarted { booking_id, .. }
            | Command::PaymentSucceeded { booking_id, .. }
            | Command::PaymentFailed { booking_id, .. }
            | Command::CancelBooking { booking_id, .. }
            | Command::RefundCompleted { booking_id, .. } => *booking_id,
            // A show-wide command names no one booking.
            Command::CancelShow { .. } | Command::BlockSeats { .. } => BookingId(uuid::Uuid::nil()),
        }
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::HoldSeats(_) => "hold_seats",
            Command::ExpireHold { .. } => "expire_hold",
            Command::ReleaseHold { .. } => "release_hold",
            Command::ReleaseBooking { .. } => "release_booking",
            Command::PaymentStarted { .. } => "payment_started",
            Command::PaymentSucceeded { .. } => "payment_succeeded",
            Command::PaymentFailed { .. } => "payment_failed",
            Command::CancelBooking { .. } => "cancel_booking",
            Command::CancelShow { .. } => "cancel_show",
            Command::RefundCompleted { .. } => "refund_completed",
            Command::BlockSeats { .. } => "block_seats",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldSeats {
    pub booking_id: BookingId,
    pub user_id: UserId,
    pub request: SeatRequest,
    /// How long the hold lasts from `issued_at`.
    pub hold_ttl_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
}

/// How the client asked for seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum SeatRequest {
    /// These exact seats, all or nothing.
    Chosen { seats: Vec<SeatId> },
    /// The best `quantity` seats the allocator can find, of `seat_type` if given.
    BestAvailable {
        quantity: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seat_type: Option<String>,
    },
    /// `quantity` places of general-admission zone `zone`, with these exact `seats`
    /// too when the layout allows mixing; all or nothing.
    Zone {
        zone: String,
        quantity: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        seats: Vec<SeatId>,
    },
}

impl SeatRequest {
    pub fn seat_count(&self) -> usize {
        match self {
            SeatRequest::Chosen { seats } => seats.len(),
            SeatRequest::BestAvailable { quantity, .. } => usize::from(*quantity),
            SeatRequest::Zone {
                quantity, seats, ..
            } => usize::try_from(*quantity)
                .unwrap_or(usize::MAX)
                .saturating_add(seats.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_hold_command_has_a_stable_wire_form() {
        let env = CommandEnvelope {
            message_id: MessageId(Uuid::from_u128(1)),
            show_id: ShowId(Uuid::from_u128(2)),
            issued_at: Millis(1_700_000_000_000),
            request_id: None,
            trace: None,
            command: Command::HoldSeats(HoldSeats {
                booking_id: BookingId(Uuid::from_u128(3)),
                user_id: UserId(Uuid::from_u128(4)),
                request: SeatRequest::Chosen {
                    seats: vec![SeatId::new("A", 1).unwrap()],
                },
                hold_ttl_ms: 480_000,
                payment_method: None,
            }),
        };
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(
            json,
            r#"{"message_id":"00000000-0000-0000-0000-000000000001","show_id":"00000000-0000-0000-0000-000000000002","issued_at":1700000000000,"command":{"type":"hold_seats","booking_id":"00000000-0000-0000-0000-000000000003","user_id":"00000000-0000-0000-0000-000000000004","request":{"mode":"chosen","seats":["A1"]},"hold_ttl_ms":480000}}"#
        );
        assert_eq!(serde_json::from_str::<CommandEnvelope>(&json).unwrap(), env);
    }

    #[test]
    fn a_bad_seat_id_does_not_parse() {
        let json = r#"{"mode":"chosen","seats":["a1"]}"#;
        assert!(serde_json::from_str::<SeatRequest>(json).is_err());
    }
}
