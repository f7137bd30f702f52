//! The processes that consume queues.
//!
//! - [`runner`]: one sequencer runner per partition queue. It takes a batch of
//!   deliveries, applies each command to the in-memory show state with the pure
//!   `sequencer` crate, commits all outcomes in ONE PostgreSQL transaction fenced by
//!   the partition epoch, acks the batch, then hands the events to the publisher.
//!   Its SQL (loading a show's state, taking a partition by bumping its epoch, the
//!   batch commit as multi-row `UNNEST` statements) is the `sequencer-store` crate.
//! - [`seatmaps`]: the live seat map of each show a batch changed, written to Redis
//!   after the commit (versioned; best effort).
//! - [`events`]: publishing committed events from the outbox (right after the commit,
//!   and a relay for whatever a crash left behind).
//! - [`expiry`]: the sweep that turns ran-out holds into `ExpireHold` commands on
//!   the show's partition queue, so expiry is ordered with everything else.
//! - [`payment_match`]: whether a payment the gateway returned is the booking's
//!   (id, metadata, amount, currency); the saga acts only on one that is.
//! - [`payment_poll`]: asks the gateway about pending payments on a short backoff
//!   (a lost webhook is not the only channel).
//! - [`retention`]: keeps the inbox, webhook deduplication and refresh tokens
//!   bounded.
//! - [`startup`]: `Workers::build(settings)` and `run_until_stopped`.

pub mod events;
pub mod expiry;
pub mod payment_match;
pub mod payment_poll;
pub mod retention;
pub mod runner;
pub mod saga;
pub mod seatmaps;
pub mod startup;

pub use startup::Workers;
