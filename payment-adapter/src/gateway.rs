//! The payment gateway as the rest of the platform sees it: a trait with its calls
//! and one error enum that says whether a retry can help.

use std::future::Future;

use contracts::BookingId;

use crate::model::{List, PaymentIntent, Refund};

/// A payment to create for a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePayment {
    pub booking_id: BookingId,
    /// Minor units, > 0.
    pub amount: i64,
    /// Three uppercase letters (`INR`).
    pub currency: String,
    /// A card token such as `pm_card_ok` (see the crate docs for the local gateway's).
    pub payment_method: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway timed out")]
    Timeout,
    #[error("gateway error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("gateway refused: {code}: {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    #[error("gateway unreachable: {0}")]
    Transport(String),
    #[error("bad gateway answer: {0}")]
    Decode(String),
}

impl GatewayError {
    /// Whether the same call (with the same idempotency key) may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            GatewayError::Timeout | GatewayError::Server { .. } | GatewayError::Transport(_) => {
                true
            }
            GatewayError::Rejected { .. } | GatewayError::Decode(_) => false,
        }
    }

    /// A short stable word for metrics labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::Timeout => "timeout",
            GatewayError::Server { .. } => "server",
            GatewayError::Rejected { .. } => "rejected",
            GatewayError::Transport(_) => "transport",
            GatewayError::Decode(_) => "decode",
        }
    }
}

/// A payment provider. Every call is safe to repeat: creates and refunds carry an
/// idempotency key, so a retry after a lost answer returns the first result instead
/// of charging twice.
pub trait PaymentGateway: Send + Sync {
    /// Creates (and confirms) a payment; the answer is usually `processing` and the
    /// outcome arrives by webhook.
    fn create_payment(
        &self,
        req: &CreatePayment,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<PaymentIntent, GatewayError>> + Send;

    fn get_payment(
        &self,
        payment_id: &str,
    ) -> impl Future<Output = Result<PaymentIntent, GatewayError>> + Send;

    /// Cancels a payment that is still `processing`.
    fn cancel_payment(
        &self,
        payment_id: &str,
    ) -> impl Future<Output = Result<PaymentIntent, GatewayError>> + Send;

    /// Refunds `amount` minor units of a succeeded payment; the answer is usually
    /// `pending` and the outcome arrives by webhook.
    fn refund(
        &self,
        payment_id: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<Refund, GatewayError>> + Send;

    /// A refund as the gateway knows it now (a webhook about it is only a hint).
    fn get_refund(
        &self,
        refund_id: &str,
    ) -> impl Future<Output = Result<Refund, GatewayError>> + Send;

    /// One page of the account's payments, newest first: at most `limit`, those
    /// after the payment `starting_after` (the last id of the previous page).
    fn list_payments(
        &self,
        starting_after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<List<PaymentIntent>, GatewayError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timeouts_server_errors_and_transport_errors_are_retryable() {
        assert!(GatewayError::Timeout.is_retryable());
        assert!(
            GatewayError::Server {
                status: 503,
                message: String::new()
            }
            .is_retryable()
        );
        assert!(GatewayError::Transport("refused".into()).is_retryable());
        assert!(
            !GatewayError::Rejected {
                status: 402,
                code: "card_declined".into(),
                message: String::new()
            }
            .is_retryable()
        );
        assert!(!GatewayError::Decode("eof".into()).is_retryable());
    }
}
