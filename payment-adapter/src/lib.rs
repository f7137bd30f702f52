//! Payments for the booking pipeline: how the platform talks to a card gateway,
//! and a local gateway to talk to.
//!
//! - [`gateway`]: the [`PaymentGateway`] trait the payment saga calls
//!   (create, get, cancel, refund, get a refund, list payments) and [`GatewayError`], which says whether a retry
//!   can help.
//! - [`client`]: [`HttpGateway`], the trait over a Stripe-shaped HTTP API with
//!   per-request timeouts, bounded exponential-backoff retries (only timeouts,
//!   connection errors and 5xx) under one `Idempotency-Key`, metrics and spans.
//! - [`model`]: the wire types: `PaymentIntent`, `Refund`, the request bodies, the
//!   gateway error body, and the [`model::WebhookEvent`] body API.md fixes.
//! - [`signature`]: the `Gateway-Signature` header (`t=<unix>,v1=<hex hmac-sha256>`):
//!   [`signature::sign`] for the sender, [`signature::verify`] for the receiver.
//!
//! The local gateway that stands in for a real provider (card test tokens with
//! scripted outcomes, signed and optionally hostile webhooks; binary `gateway`) is
//! its own crate, `local-gateway` in `payment-adapter/local/`, so that the services
//! linking this crate never carry a test double.
//!
//! The crate depends on `contracts` only among the workspace crates.

pub mod client;
pub mod gateway;
pub mod model;
pub mod signature;

pub use client::HttpGateway;
pub use gateway::{CreatePayment, GatewayError, PaymentGateway};
pub use model::{
    IntentStatus, List, PaymentIntent, Refund, RefundStatus, WebhookData, WebhookEvent, WebhookKind,
};
pub use signature::{SIGNATURE_HEADER, SignatureError};
