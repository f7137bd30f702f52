//! The notifier: booking events become emails, a confirmation carries a signed
//! e-ticket.
//!
//! - Tickets themselves (Ed25519-signed tokens and their QR code) are the `tickets`
//!   crate, shared with ingress, which verifies them.
//! - [`mail`]: templates (files in `templates/`, minijinja; HTML + text parts) and
//!   sending over SMTP with lettre.
//! - [`consumer`]: the notifier's `platform::amqp::Handler`, idempotent per event id
//!   (`sent_messages`), retrying transient SMTP failures and dead-lettering permanent
//!   ones. The workers process runs it.
//! - [`sms`]: booking SMS to a verified phone when the buyer's preference asks.
//! - Reminders before a show are events like the others (`booking.reminder`,
//!   written by the workers' reminder sweep): [`mail::Template::Reminder`], sent
//!   only while the booking is confirmed and its show still to come.
//! - [`record`]: recording a send; the guarantee (at least once, with a stable
//!   Message-ID) and the window in which an email can go out twice.
//!
//! The local SMTP receiver the run command and the tests send to is its own crate,
//! `notifier/sink` (`smtp-sink`), so the workers binary does not carry it.

pub mod consumer;
pub mod mail;
pub mod record;
pub mod sms;

pub use consumer::{Notifier, Outcome, consumer_config};
