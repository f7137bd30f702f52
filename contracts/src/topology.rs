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
    /// The layout generation the partition names below belong to: 1 is the layout
    /// a deployment starts with (queues `booking.commands.pN`); each growth of the
    /// partition count makes the next (`booking.commands.gG.pN`, see
    /// `docs/repartition.md`).
    pub generation: u16,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            partitions: DEFAULT_PARTITIONS,
            generation: 1,
        }
    }
}

impl Topology {
    pub fn new(prefix: impl Into<String>, partitions: u16) -> Self {
        assert!(partitions > 0, "partition count must be positive");
        Self {
            prefix: prefix.into(),
            partitions,
            generation: 1,
        }
    }

    /// The same names for layout generation `generation` of `partitions` queues.
    ///
    /// # Panics
    /// If `partitions` or `generation` is 0.
    #[must_use]
    pub fn at_layout(&self, generation: u16, partitions: u16) -> Self {
        assert!(partitions > 0, "partition count must be positive");
        assert!(generation > 0, "layout generations start at 1");
        Self {
            prefix: self.prefix.clone(),
            partitions,
            generation,
        }
    }

    /// How partition `p` is named in logs and metric labels: `3` in the first
    /// layout, `g2.3` in later ones.
    pub fn partition_label(&self, p: u16) -> String {
        if self.generation == 1 {
            p.to_string()
        } else {
            format!("g{}.{p}", self.generation)
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
        if self.generation == 1 {
            format!("p{p}")
        } else {
            format!("g{}.p{p}", self.generation)
        }
    }

    pub fn partition_queue(&self, p: u16) -> String {
        self.name(&format!("booking.commands.{}", self.partition_key(p)))
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

    /// Quorum queue of the payment saga: booking events it reacts to, and pay
    /// requests from ingress.
    pub fn saga_queue(&self) -> String {
        self.name("payments.saga")
    }

    /// Quorum queue of verified gateway webhooks (ingress -> saga).
    pub fn webhooks_queue(&self) -> String {
        self.name("payments.webhooks")
    }

    /// Fanout exchange and dead-letter queue of the payment saga: refunds that
    /// failed for good and messages that kept failing.
    pub fn payments_dlx(&self) -> String {
        self.name("payments.dlx")
    }

    pub fn payments_dlq(&self) -> String {
        self.name("payments.dlq")
    }

    /// Quorum queue of the notifier: the booking events that get an email.
    pub fn notifier_queue(&self) -> String {
        self.name("notifier.events")
    }

    /// Fanout exchange and dead-letter queue of the notifier: emails the SMTP
    /// server refused for good, and events that kept failing.
    pub fn notifier_dlx(&self) -> String {
        self.name("notifier.dlx")
    }

    pub fn notifier_dlq(&self) -> String {
        self.name("notifier.dlq")
    }

    /// Every dead-letter queue, for operators.
    pub fn dead_letter_queues(&self) -> Vec<String> {
        vec![
            self.commands_dlq(),
            self.payments_dlq(),
            self.notifier_dlq(),
        ]
    }

    /// All partition numbers.
    pub fn all_partitions(&self) -> impl Iterator<Item = u16> {
        0..self.partitions
    }
}

/// AMQP type of the marker that closes a partition of an old layout generation
/// (see `docs/repartition.md`): everything before it in the queue is applied by that
/// partition's runner, everything after it is forwarded to the new layout.
pub const SEAL_MARKER_TYPE: &str = "partition.seal";

/// The body of a seal marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealMarker {
    /// The generation and partition it closes.
    pub generation: u16,
    pub partition: u16,
    /// The layout that replaces it.
    pub next_generation: u16,
    pub next_partitions: u16,
}

/// Header that carries why a message was dead-lettered by the application.
pub const DEAD_LETTER_REASON_HEADER: &str = "x-dead-letter-reason";
/// Header that carries the queue a dead-lettered message came from.
pub const SOURCE_QUEUE_HEADER: &str = "x-source-queue";
/// Event routing keys the payment saga consumes.
pub const SAGA_EVENT_KEYS: [&str; 3] = [
    "booking.held",
    "booking.late_payment_refused",
    "booking.cancelled",
];

/// Event routing keys the notifier consumes (one email each; `booking.released`
/// is a hold the theater's show cancellation released; `booking.reminder` the
/// reminder sweep's, before a show).
pub const NOTIFIER_EVENT_KEYS: [&str; 7] = [
    "booking.confirmed",
    "booking.cancelled",
    "booking.refunded",
    "booking.expired",
    "booking.payment_failed",
    "booking.released",
    "booking.reminder",
];

/// AMQP `type` property of a pay request sent by ingress to the saga queue.
pub const PAY_REQUEST_TYPE: &str = "pay_request";

/// AMQP `type` of a failed refund parked in the payments dead-letter queue; replayed
/// to the saga queue, it retries the refund ([`crate::saga::RefundRetry`]).
pub const REFUND_RETRY_TYPE: &str = "refund_retry";

/// AMQP `type` of an operator's record of a refund made by hand, sent to the saga
/// queue ([`crate::saga::RefundRecord`]).
pub const REFUND_RECORD_TYPE: &str = "refund_record";

/// Header of a dead-lettered message: every time it was dead-lettered, oldest
/// first, as a list of tables `{reason, source, at}` (`at` in Unix seconds); kept
/// through replays, so a message parked again keeps its first reason too.
pub const DEAD_LETTER_HISTORY_HEADER: &str = "x-dead-letter-history";

/// Header that carries the HTTP request id through AMQP.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest request id accepted from a client; a longer one is replaced.
pub const REQUEST_ID_MAX_CHARS: usize = 128;

/// A request id a client may choose: 1 to [`REQUEST_ID_MAX_CHARS`] visible ASCII
/// characters (no spaces or controls). It is copied into every log line and into
/// the AMQP headers, so anything else is replaced by a fresh one.
pub fn is_valid_request_id(id: &[u8]) -> bool {
    (1..=REQUEST_ID_MAX_CHARS).contains(&id.len()) && id.iter().all(u8::is_ascii_graphic)
}

#[cfg(test)]
mod request_id_tests {
    use super::*;

    #[test]
    fn a_request_id_is_1_to_128_visible_ascii_characters() {
        assert!(is_valid_request_id(b"a"));
        assert!(is_valid_request_id(b"0193-abc_DEF.~!"));
        assert!(is_valid_request_id("x".repeat(128).as_bytes()));
        assert!(!is_valid_request_id(b""));
        assert!(!is_valid_request_id("x".repeat(129).as_bytes()));
        assert!(!is_valid_request_id(b"has space"));
        assert!(!is_valid_request_id(b"tab\there"));
        assert!(!is_valid_request_id("caf\u{e9}".as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_layout_keeps_its_names_and_later_ones_get_their_own() {
        let t = Topology::new("x.", 16);
        assert_eq!(t.partition_queue(3), "x.booking.commands.p3");
        assert_eq!(t.partition_key(3), "p3");
        assert_eq!(t.partition_label(3), "3");
        let g = t.at_layout(2, 64);
        assert_eq!(g.partition_queue(35), "x.booking.commands.g2.p35");
        assert_eq!(g.partition_key(35), "g2.p35");
        assert_eq!(g.partition_label(35), "g2.35");
        assert_eq!(g.commands_exchange(), t.commands_exchange());
        assert_eq!(g.all_partitions().count(), 64);
    }

    /// A count grown by a multiple moves each show to a partition whose parent (its
    /// number modulo the old count) is the show's old partition: the rule that lets
    /// each new partition wait for one old one only.
    #[test]
    fn a_show_in_a_grown_layout_descends_from_its_old_partition() {
        let t = Topology::new("", 16);
        let g = t.at_layout(2, 64);
        for i in 0..5_000u128 {
            let show = ShowId(uuid::Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
            assert_eq!(g.partition_of(show) % 16, t.partition_of(show));
        }
    }
}
