//! The messages of the payment saga's queue, and the one decoder that reads them:
//! the saga consumes with it, and the dead-letter replay and its dry run ask it
//! whether a message would be understood before publishing it back, so what the
//! dry run says is what the replay does and what the saga then does.

use crate::event::EventEnvelope;
use crate::ids::BookingId;
use crate::payment::PayRequest;
use crate::topology::{PAY_REQUEST_TYPE, REFUND_RECORD_TYPE, REFUND_RETRY_TYPE};
use serde::{Deserialize, Serialize};

/// What `problem` says in a [`RefundRetry`].
pub const REFUND_FAILED_PROBLEM: &str = "refund_failed";

/// A refund the gateway refused for good, parked in the payments dead-letter queue
/// for operators (AMQP type [`REFUND_RETRY_TYPE`], source queue the saga's).
/// Replayed, it asks the saga to request the refund again: retry number
/// `retries + 1`, whose gateway idempotency key is fixed by that number, so the same
/// message replayed twice is one refund, and a retry that fails again is parked
/// with `retries + 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRetry {
    pub booking_id: BookingId,
    /// The payment attempt whose refund failed (1, 2, ...).
    pub attempt: i32,
    /// [`REFUND_FAILED_PROBLEM`], for operators reading the queue.
    pub problem: String,
    /// The gateway's reason.
    pub reason: String,
    /// Retries made before this message was parked (0: the first refund failed).
    #[serde(default)]
    pub retries: u32,
}

/// An operator records a refund made outside the saga (in the provider's
/// dashboard, by bank transfer) of a booking whose refund failed (AMQP type
/// [`REFUND_RECORD_TYPE`]): the saga ends the refund as if the gateway had
/// succeeded, and the booking ends `refunded` through its partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub booking_id: BookingId,
    /// The payment attempt whose refund failed.
    pub attempt: i32,
    /// The provider's (or bank's) reference of the refund made by hand.
    pub refund_id: String,
    pub note: String,
    /// Who recorded it (the operator's user id, or `bookctl`).
    pub recorded_by: String,
}

/// A message of the saga queue.
#[derive(Debug, Clone, PartialEq)]
pub enum SagaMessage {
    Event(Box<EventEnvelope>),
    Pay(PayRequest),
    RetryRefund(RefundRetry),
    RecordRefund(RefundRecord),
}

impl SagaMessage {
    /// Reads a message of the saga queue by its AMQP `type`. A failed refund parked
    /// before it had a type (`{"problem": "refund_failed", ...}`) is read as the
    /// retry it asks for.
    pub fn decode(kind: Option<&str>, body: &[u8]) -> Result<Self, String> {
        let err = |e: serde_json::Error| e.to_string();
        match kind {
            Some(PAY_REQUEST_TYPE) => serde_json::from_slice(body).map(Self::Pay).map_err(err),
            Some(REFUND_RETRY_TYPE) => serde_json::from_slice(body)
                .map(Self::RetryRefund)
                .map_err(err),
            Some(REFUND_RECORD_TYPE) => serde_json::from_slice(body)
                .map(Self::RecordRefund)
                .map_err(err),
            _ => match serde_json::from_slice::<EventEnvelope>(body) {
                Ok(env) => Ok(Self::Event(Box::new(env))),
                Err(e) => match serde_json::from_slice::<RefundRetry>(body) {
                    Ok(r) if r.problem == REFUND_FAILED_PROBLEM => Ok(Self::RetryRefund(r)),
                    _ => Err(err(e)),
                },
            },
        }
    }

    /// The AMQP `type` it travels with (none for a booking event).
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Self::Event(_) => None,
            Self::Pay(_) => Some(PAY_REQUEST_TYPE),
            Self::RetryRefund(_) => Some(REFUND_RETRY_TYPE),
            Self::RecordRefund(_) => Some(REFUND_RECORD_TYPE),
        }
    }

    /// What handling it will do, in a few words for operators.
    pub fn describe(&self) -> String {
        match self {
            Self::Event(e) => format!(
                "booking event {} of booking {}",
                e.event.routing_key(),
                e.booking_id
            ),
            Self::Pay(p) => format!("pay request of booking {}", p.booking_id),
            Self::RetryRefund(r) => format!(
                "retries the refund of booking {} (payment attempt {}, retry {}; it failed: {})",
                r.booking_id,
                r.attempt,
                r.retries + 1,
                r.reason
            ),
            Self::RecordRefund(r) => format!(
                "records the refund {} of booking {} made by hand",
                r.refund_id, r.booking_id
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_failed_refund_parked_before_it_had_a_type_reads_as_its_retry() {
        let b = BookingId(Uuid::from_u128(7));
        let old = serde_json::json!({"booking_id": b, "attempt": 1,
            "problem": "refund_failed", "reason": "refund_declined"})
        .to_string();
        let m = SagaMessage::decode(None, old.as_bytes()).unwrap();
        let SagaMessage::RetryRefund(r) = &m else {
            panic!("{m:?}")
        };
        assert_eq!((r.booking_id, r.attempt, r.retries), (b, 1, 0));
        assert_eq!(m.kind(), Some(REFUND_RETRY_TYPE));
        assert!(m.describe().contains("retry 1"), "{}", m.describe());
        let typed = SagaMessage::decode(Some(REFUND_RETRY_TYPE), old.as_bytes()).unwrap();
        assert_eq!(typed, m);
    }

    #[test]
    fn what_the_saga_cannot_read_says_why() {
        let e = SagaMessage::decode(None, br#"{"problem": "something_else"}"#).unwrap_err();
        assert!(e.contains("missing field"), "{e}");
        let e = SagaMessage::decode(Some(REFUND_RECORD_TYPE), b"{}").unwrap_err();
        assert!(e.contains("booking_id"), "{e}");
    }
}
