//! The public HTTP API (axum).
//!
//! - [`accepted`]: the durable record of every booking answered 202 (batched), from
//!   which `GET` answers `queued` whatever Redis lost.
//! - [`startup`]: `build(settings)` binds the port and wires state; `run_until_stopped`.
//! - [`state`]: [`AppState`], what every handler shares.
//! - [`catalog`]: the catalog read model (lists, searches, shows, seat maps) the
//!   catalog and admin routes answer from.
//! - [`timefmt`]: times as the API answers them (RFC 3339).
//! - [`deadline`]: the request deadline; a slow body is `408`, a slow handler `503`,
//!   both problem+json and counted.
//! - [`tls`]: HTTPS from certificate files (optional).
//! - [`serve`]: the HTTP/1.1 server loop with header-read timeout, head size cap and
//!   connection cap.
//! - [`auth`]: the `Caller` extractor over the `auth` crate's bearer tokens.
//! - [`problem`]: RFC 9457 problem+json errors; one exhaustive mapping.
//! - [`extract`]: JSON and path extractors whose rejections are problem+json too.
//! - [`shows`]: the cached view of a show (status, layout, prices) used to validate
//!   a booking without touching the database on the hot path.
//! - [`routes`]: every handler, grouped by area; each area's `router()` registers
//!   its handlers with their OpenAPI entries.
//! - [`openapi`]: the generated OpenAPI document (`/v1/openapi.json`) and `/docs`.
//! - [`pagination`]: `?limit=&cursor=` keyset pagination.
//! - [`ratelimit`]: per-caller budgets shared by every instance (GCRA in Redis),
//!   applied by a middleware before any handler runs.
//! - [`mail`]: account emails (verification, password reset) and their SMTP client.
//! - [`memo`]: a short-lived single-flight cache of computed answers (movie lists).
//! - [`scope`]: theater scopes of admins and staff, the [`scope::Access`] extractor.
//! - [`text`]: visible free text (names): bounded, no control or invisible
//!   formatting characters (zero-width, bidi controls).
//! - [`cors`]: CORS for the configured other origins (none by default); the web app
//!   (crate `web`, merged into the router) is same-origin and needs none.
//!
//! Submitting a booking writes nothing to PostgreSQL: it validates, derives the
//! booking id from (user, Idempotency-Key), marks it queued in Redis, publishes a
//! `HoldSeats` command with publisher confirms, and only then answers 202.

pub mod accepted;
pub mod auth;
pub mod catalog;
pub mod cors;
pub mod deadline;
pub mod epochs;
pub mod extract;
pub mod mail;
pub mod memo;
pub mod oidc;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod ratelimit;
pub mod routes;
pub mod scope;
pub mod serve;
pub mod shows;
pub mod startup;
pub mod state;
pub mod text;
pub mod timefmt;
pub mod tls;

pub use startup::Application;
pub use state::AppState;
