//! Names of every RabbitMQ exchange and queue, under one prefix.
//!
//! A deployment uses the empty prefix; each test uses its own, so tests run in
//! parallel on one broker. The declaration itself (arguments, bindings) lives in
//! `platform::amqp`, the only place that talks to the broker.

use crate::ids::ShowId;
use crate::partition::{DEFAULT_PARTITIONS, partition_of};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub prefix: String,
    pub partitions: u16,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            partitions: DEFAULT_PARTITIONS,
        }
    }
}

impl Topology {
    pub fn new(prefix: impl Into<String>, partitions: u16) -> Self {
        assert!(partitions > 0, "partition count must be positive");
        Self {
            prefix: prefix.into(),
            partitions,
        }
    }

    fn name(&self, s: &str) -> String {
        format!("{}{}", self.prefix, s)
    }

    /// Direct exchange of the partition queues.
    pub fn commands_exchange(&self) -> String {
        self.name("booking.commands")
    }

    /// Routing key (and queue suffix) of partition `p`.
    pub fn partition_key(&self, p: u16) -> String {
        format!("p{p}")
    }

    pub fn partition_queue(&self, p: u16) -> String {
        self.name(&format!("booking.commands.p{p}"))
    }

    pub fn partition_of(&self, show: ShowId) -> u16 {
        partition_of(show, self.partitions)
    }

    /// Fanout exchange that quorum partition queues dead-letter into.
    pub fn commands_dlx(&self) -> String {
        self.name("booking.commands.dlx")
    }

    /// The dead-letter queue of the partition queues.
    pub fn commands_dlq(&self) -> String {
        self.name("booking.commands.dlq")
    }

    /// Topic exchange of sequencer events.
    pub fn events_exchange(&self) -> String {
        self.name("booking.events")
    }

    /// All partition numbers.
    pub fn all_partitions(&self) -> impl Iterator<Item = u16> {
        0..self.partitions
    }
}

/// Header that carries why a message was dead-lettered by the application.
pub const DEAD_LETTER_REASON_HEADER: &str = "x-dead-letter-reason";
/// Header that carries the queue a dead-lettered message came from.
pub const SOURCE_QUEUE_HEADER: &str = "x-source-queue";
/// Header that carries the HTTP request id through AMQP.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
