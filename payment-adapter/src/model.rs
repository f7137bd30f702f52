//! The Stripe-shaped wire types spoken between [`crate::client::HttpGateway`] and
//! the gateway (the bundled `local-gateway` crate or a real one), and the
//! webhook body whose shape API.md fixes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `object` of a [`PaymentIntent`].
pub const OBJECT_PAYMENT_INTENT: &str = "payment_intent";
/// `object` of a [`Refund`].
pub const OBJECT_REFUND: &str = "refund";
/// `object` of a [`List`].
pub const OBJECT_LIST: &str = "list";

/// The `type` of a [`WebhookEvent`] (API.md "Payment webhooks").
pub mod event_type {
    pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
    pub const PAYMENT_FAILED: &str = "payment.failed";
    pub const REFUND_SUCCEEDED: &str = "refund.succeeded";
    pub const REFUND_FAILED: &str = "refund.failed";
}

/// What a webhook says happened, read from its `type` ([`WebhookEvent::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    PaymentSucceeded,
    PaymentFailed,
    RefundSucceeded,
    RefundFailed,
    /// A type this system does not act on.
    Other,
}

impl WebhookKind {
    pub fn parse(kind: &str) -> Self {
        match kind {
            event_type::PAYMENT_SUCCEEDED => Self::PaymentSucceeded,
            event_type::PAYMENT_FAILED => Self::PaymentFailed,
            event_type::REFUND_SUCCEEDED => Self::RefundSucceeded,
            event_type::REFUND_FAILED => Self::RefundFailed,
            _ => Self::Other,
        }
    }
}

/// One payment attempt at the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    /// `pi_...`
    pub id: String,
    /// Always `"payment_intent"`.
    pub object: String,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    pub status: IntentStatus,
    pub payment_method: String,
    pub metadata: IntentMetadata,
    /// Minor units refunded so far (succeeded refunds only).
    pub amount_refunded: i64,
    pub last_payment_error: Option<PaymentError>,
    /// Unix seconds.
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentMetadata {
    pub booking_id: Uuid,
}

/// Why the last attempt to pay failed (`card_declined`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Accepted, outcome not known yet; a webhook will tell.
    Processing,
    /// Money captured.
    Succeeded,
    /// Declined or failed: the payment method must be replaced to try again.
    RequiresPaymentMethod,
    Canceled,
}

impl IntentStatus {
    /// Whether the intent can still change on its own (and a webhook is coming).
    pub fn is_final(self) -> bool {
        !matches!(self, IntentStatus::Processing)
    }
}

/// A refund of (part of) a succeeded intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// `re_...`
    pub id: String,
    /// Always `"refund"`.
    pub object: String,
    /// The `pi_...` refunded.
    pub payment_intent: String,
    /// Minor units.
    pub amount: i64,
    /// The refunded intent's currency.
    pub currency: String,
    pub status: RefundStatus,
    pub failure_reason: Option<String>,
}

/// A page of a list route (`GET /v1/payment_intents`), newest first, as Stripe
/// pages: the next page starts after the last item's id while `has_more`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct List<T> {
    /// Always `"list"`.
    pub object: String,
    pub data: Vec<T>,
    pub has_more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

/// Body of `POST /v1/payment_intents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateIntentRequest {
    pub amount: i64,
    pub currency: String,
    pub payment_method: String,
    pub metadata: IntentMetadata,
}

/// Body of `POST /v1/refunds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRefundRequest {
    pub payment_intent: String,
    pub amount: i64,
}

/// What the gateway POSTs to the webhook URL, signed in [`crate::signature::SIGNATURE_HEADER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// `evt_...`: the same for every delivery (and duplicate) of one event.
    pub id: String,
    /// One of [`event_type`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds when the event happened (not when it was delivered).
    pub created: i64,
    pub data: WebhookData,
}

impl WebhookEvent {
    /// The event's type as a [`WebhookKind`].
    pub fn webhook_kind(&self) -> WebhookKind {
        WebhookKind::parse(&self.kind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookData {
    /// The `pi_...` concerned (for refund events too).
    pub payment_id: String,
    pub booking_id: Uuid,
    /// Minor units: the intent's amount, or the refund's for refund events.
    pub amount: i64,
    pub currency: String,
    /// Why it failed (`card_declined`, `refund_declined`); absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `re_...` of refund events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
}

/// A gateway error answer: `{"error": {"type", "code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// `invalid_request_error`, `authentication_error`, `idempotency_error`, `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_webhook_type_names_its_kind_and_others_are_other() {
        for (name, kind) in [
            (event_type::PAYMENT_SUCCEEDED, WebhookKind::PaymentSucceeded),
            (event_type::PAYMENT_FAILED, WebhookKind::PaymentFailed),
            (event_type::REFUND_SUCCEEDED, WebhookKind::RefundSucceeded),
            (event_type::REFUND_FAILED, WebhookKind::RefundFailed),
            ("charge.disputed", WebhookKind::Other),
        ] {
            assert_eq!(WebhookKind::parse(name), kind, "{name}");
        }
    }

    #[test]
    fn a_webhook_event_has_the_shape_api_md_fixes() {
        let booking = Uuid::from_u128(7);
        let event = WebhookEvent {
            id: "evt_1".into(),
            kind: event_type::PAYMENT_FAILED.into(),
            created: 5,
            data: WebhookData {
                payment_id: "pi_1".into(),
                booking_id: booking,
                amount: 500,
                currency: "INR".into(),
                reason: Some("card_declined".into()),
                refund_id: None,
            },
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({
                "id": "evt_1", "type": "payment.failed", "created": 5,
                "data": {"payment_id": "pi_1", "booking_id": booking.to_string(),
                         "amount": 500, "currency": "INR", "reason": "card_declined"}
            })
        );
        let parsed: WebhookEvent = serde_json::from_value(json!({
            "id": "evt_2", "type": "payment.succeeded", "created": 6,
            "data": {"payment_id": "pi_2", "booking_id": booking.to_string(), "amount": 1, "currency": "INR"}
        }))
        .unwrap();
        assert_eq!(parsed.data.reason, None);
    }

    #[test]
    fn intent_statuses_are_snake_case() {
        assert_eq!(
            serde_json::to_value(IntentStatus::RequiresPaymentMethod).unwrap(),
            json!("requires_payment_method")
        );
        assert_eq!(
            serde_json::to_value(RefundStatus::Pending).unwrap(),
            json!("pending")
        );
    }
}
