//! Operations shared by the operator CLI (`bookctl`) and the `/v1/ops` API.
//!
//! - [`dlq`]: the registry of dead-letter queues of a [`contracts::Topology`], and
//!   list / show / replay / purge over them. Reading never loses a message: it
//!   consumes with manual acks and requeues whatever it did not mean to take.
//! - [`partitions`]: per partition, its queue depth and consumers (from the broker)
//!   and its owner, epoch and last batch (from PostgreSQL).
//!
//! The dry run of a replay lives in `bookctl`, because it needs the pure sequencer
//! and the runner's SQL, which the HTTP API must not depend on.

pub mod dlq;
pub mod partitions;
pub mod reconcile;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The name is not one of the registry's dead-letter queues (so the API can never
    /// be used to read an arbitrary queue).
    #[error("{queue:?} is not a dead-letter queue of this deployment (known: {known})")]
    UnknownQueue { queue: String, known: String },
    #[error("rabbitmq: {0}")]
    Broker(#[from] lapin::Error),
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    /// A replayed message was not confirmed by the broker. It stays in the
    /// dead-letter queue, as does every message after it.
    #[error("replaying message {message_id}: {detail} ({replayed} replayed before it)")]
    Replay {
        message_id: String,
        replayed: usize,
        detail: String,
    },
}
