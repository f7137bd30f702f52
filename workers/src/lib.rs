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
//! - [`faults`]: the test hook `GET`/`POST /faults` that arms injected failures in a
//!   running process (only with `workers.fault_injection`; production refuses it).
//! - [`expiry`]: the sweep that turns ran-out holds into `ExpireHold` commands on
//!   the show's partition queue, so expiry is ordered with everything else.
//! - [`reminders`]: the sweep that writes a reminder event for each confirmed
//!   booking of a show whose reminder time has come (`notifier.reminder_before_secs`
//!   before it starts), for the notifier to send once per channel.
//! - [`retention`]: keeps the inbox, webhook deduplication and refresh tokens
//!   bounded.
//! - [`saga`]: the payment saga, a `platform::amqp::Handler` on the saga and webhook
//!   queues (gateway calls, the `payments` table, commands back into the partition),
//!   the sweep of pending payments whose hold ran out, the poll of pending payments
//!   (a lost webhook is not the only channel) and the check that a payment is the
//!   booking's own.
//! - [`startup`]: `Workers::build(settings)` and `run_until_stopped`.

pub mod events;
pub mod expiry;
pub mod faults;
pub mod layouts;
pub mod reminders;
pub mod retention;
pub mod runner;
pub mod saga;
pub mod seatmaps;
pub mod startup;

pub use startup::Workers;
