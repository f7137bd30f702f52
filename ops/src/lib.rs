//! Operations shared by the operator CLI (`bookctl`) and the `/v1/ops` API.
//!
//! - [`dlq`]: the registry of dead-letter queues of a [`contracts::Topology`], and
//!   list / show / replay / purge over them. Reading never loses a message: it
//!   consumes with manual acks and requeues whatever it did not mean to take.
//!   [`dlq::dry_run`] says what replaying messages would do, with the pure
//!   sequencer over the shows' current state (read only), for `bookctl dlq replay
//!   --dry-run` and `POST /v1/ops/dlq/{queue}/replay {dry_run: true}` alike.
//! - [`refunds`]: an operator records a refund made by hand for a booking whose
//!   refund failed; the saga ends it like any refund.
//! - [`partitions`]: per partition, its queue depth and consumers (from the broker)
//!   and its owner, epoch and last batch (from PostgreSQL).
//! - [`grow`]: growing the partition count under load (`bookctl partitions grow`).
//! - [`reconcile`]: money versus seats over the database, and
//!   [`reconcile::with_gateway`]: the same compared with the payment gateway's own
//!   payments and refunds.

pub mod dlq;
pub mod grow;
pub mod partitions;
pub mod reconcile;
pub mod refunds;

pub use sequencer_store::StoreError;

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
    /// A dry run could not load what it needs from PostgreSQL.
    #[error("{0}")]
    Store(#[from] sequencer_store::StoreError),
    /// What the operator gave is not acceptable (nothing was done).
    #[error("{0}")]
    Invalid(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Not possible in the current state (nothing was done).
    #[error("{0}")]
    Conflict(String),
}
