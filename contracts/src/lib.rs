//! The shared vocabulary of the booking pipeline.
//!
//! Every process (ingress, the sequencer runners, the payment saga, the notifier,
//! the operator CLI) speaks to the others only through the types in this crate:
//!
//! - [`ids`]: typed identifiers (`ShowId`, `BookingId`, `SeatId`, ...) and the
//!   deterministic derivation of a booking id from (user, idempotency key).
//! - [`faults`]: the counts of the workers' fault-injection test hook.
//! - [`kind`]: what a catalog entry is (movie, concert, sports, play, comedy, other).
//! - [`layout`]: a screen's seat layout (rows, seats, seat types, aisles, focal point,
//!   general-admission zones) and a show's price list.
//! - [`command`]: what travels on the partition queues (`HoldSeats`, `ExpireHold`,
//!   `ReleaseHold`, ...), wrapped in a [`command::CommandEnvelope`].
//! - [`event`]: what the sequencer emits (`BookingHeld`, `BookingRejected`, ...),
//!   and the reminder before a show the workers' sweep adds.
//! - [`status`]: the booking and show state names stored in PostgreSQL and served by
//!   the API.
//! - [`money`]: an amount in minor units of a currency, the cancellation fee's
//!   arithmetic and how an amount is written.
//! - [`payment`]: the pay request ingress sends the payment saga, and the validated
//!   payment method name.
//! - [`pricing`]: a show's demand pricing (tiers by share sold and time to start)
//!   and the one rule that prices a seat by them.
//! - [`role`]: the caller's role, carried in access tokens and stored with users.
//! - [`partition`]: the stable `show_id -> partition` function (pinned by test vectors:
//!   changing it moves shows between sequencers).
//! - [`topology`]: the names of every RabbitMQ exchange and queue, with a per-deployment
//!   (or per-test) prefix.
//! - [`trace`]: the W3C `traceparent` that follows one booking through every part.
//!
//! It depends on `serde`, `uuid` and `utoipa` (schema derives, no IO) only, so every
//! part can use it.

pub mod command;
pub mod event;
pub mod faults;
pub mod ids;
pub mod kind;
pub mod layout;
pub mod money;
pub mod partition;
pub mod payment;
pub mod pricing;
pub mod role;
pub mod saga;
pub mod status;
pub mod topology;
pub mod trace;

pub use command::{Command, CommandEnvelope, HoldSeats, SeatRequest};
pub use event::{Event, EventEnvelope, RejectReason, Reminder};
pub use ids::{BookingId, EventId, IdempotencyKey, MessageId, SeatId, ShowId, UserId};
pub use kind::EventKind;
pub use layout::{FocalPoint, LayoutRow, LayoutSeat, LayoutZone, Price, ScreenLayout, ZonePlaces};
pub use money::Money;
pub use partition::partition_of;
pub use payment::{
    PayRequest, PaymentMethod, PaymentMethodError, looks_like_card_number, redact_card_numbers,
};
pub use pricing::{PriceTier, Pricing};
pub use role::Role;
pub use saga::{RefundRecord, RefundRetry, SagaMessage};
pub use status::{BookingStatus, ShowStatus};
pub use topology::Topology;
pub use trace::TraceParent;

/// A point in time as milliseconds since the Unix epoch (UTC).
///
/// Time enters the pipeline only inside commands, stamped by whoever issues them;
/// the sequencer never reads a clock, which keeps replays deterministic.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    pub fn plus_ms(self, ms: i64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
}

/// Most seats one booking may take (API.md: "at most 10 seats").
pub const MAX_SEATS_PER_BOOKING: usize = 10;
