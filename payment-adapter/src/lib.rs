//! Payments for the booking pipeline: how the platform talks to a card gateway,
//! and a local gateway to talk to.
//!
//! - [`gateway`]: the [`PaymentGateway`] trait the payment saga calls
//!   (create, get, cancel, refund) and [`GatewayError`], which says whether a retry
//!   can help.
//! - [`client`]: [`HttpGateway`], the trait over a Stripe-shaped HTTP API with
//!   per-request timeouts, bounded exponential-backoff retries (only timeouts,
//!   connection errors and 5xx) under one `Idempotency-Key`, metrics and spans.
//! - [`model`]: the wire types: `PaymentIntent`, `Refund`, the request bodies, the
//!   gateway error body, and the [`model::WebhookEvent`] body API.md fixes.
//! - [`signature`]: the `Gateway-Signature` header (`t=<unix>,v1=<hex hmac-sha256>`):
//!   [`signature::sign`] for the sender, [`signature::verify`] for the receiver.
//! - [`local`]: [`LocalGateway`], a real HTTP server standing in for the provider:
//!   card test tokens with scripted outcomes (`pm_card_ok`, `pm_card_declined`,
//!   `pm_card_slow`, `pm_card_error`, `pm_card_timeout`, `pm_card_refund_fail`) and
//!   signed webhooks that can be made hostile (retried, duplicated, reordered). Its
//!   module docs list the API and every behaviour. The `gateway` binary runs it.
//!
//! The crate depends on `contracts` only among the workspace crates.

pub mod client;
pub mod gateway;
pub mod local;
pub mod model;
pub mod signature;

pub use client::HttpGateway;
pub use gateway::{CreatePayment, GatewayError, PaymentGateway};
pub use local::{LocalGateway, LocalGatewayConfig};
pub use model::{
    IntentStatus, PaymentIntent, Refund, RefundStatus, WebhookData, WebhookEvent, WebhookKind,
};
pub use signature::{SIGNATURE_HEADER, SignatureError};
