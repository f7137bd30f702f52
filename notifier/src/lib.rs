//! The notifier: booking events become emails, a confirmation carries a signed
//! e-ticket.
//!
//! - [`ticket`]: Ed25519-signed ticket tokens (sign, verify, key rotation) and the
//!   QR code PNG. The token format is in `TICKETS.md` beside this crate.
//! - [`mail`]: templates (files in `templates/`, minijinja; HTML + text parts) and
//!   sending over SMTP with lettre.
//! - [`consumer`]: the notifier's `platform::amqp::Handler`, idempotent per event id
//!   (`sent_messages`), retrying transient SMTP failures and dead-lettering permanent
//!   ones. The workers process runs it.
//! - [`sink`]: a small local SMTP receiver (binary `smtp-sink`) that stores mail as
//!   `.eml` files, for the run command and the tests.

pub mod consumer;
pub mod mail;
pub mod sink;
pub mod ticket;

pub use consumer::{Notifier, Outcome, consumer_config};
