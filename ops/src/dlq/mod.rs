//! Dead-letter queues: which there are, what is in them, and putting messages back.
//!
//! Two kinds of message land in a dead-letter queue:
//! - copies the sequencer runner publishes to the dead-letter exchange when a message
//!   can never be applied; they carry `x-dead-letter-reason` and `x-source-queue`,
//!   and their `timestamp` property is the time they were dead-lettered;
//! - messages the broker dead-letters itself (past `x-delivery-limit`); they carry
//!   the broker's `x-death` header (reason `delivery_limit`, `rejected`, ...).
//!
//! # Reading without losing anything
//!
//! Every operation consumes the queue on its own channel with manual acks and a
//! prefetch of the number of messages it wants, collects them with a short idle
//! timeout, cancels the consumer, then acks only what it meant to remove (after a
//! publisher confirm, for a replay) and nacks every other message with requeue.
//! Closing the channel requeues anything left unacked, so a crash in between loses
//! nothing either.
//!
//! The queues are quorum queues without a delivery limit, so a requeued message
//! goes to the BACK of the queue: reading a dead-letter queue rotates it. Order in a
//! dead-letter queue carries no meaning (its messages come from many partitions and
//! are replayed one by one), so this is harmless. While one operation holds messages,
//! a concurrent one does not see them (it reports them as not found): run one at a
//! time.

pub mod dry_run;
pub(crate) mod replay;
mod taken;

pub use replay::{replay, replay_headers};
use taken::Taken;

use crate::OpsError;
use contracts::topology::{DEAD_LETTER_REASON_HEADER, SOURCE_QUEUE_HEADER};
use contracts::{CommandEnvelope, SagaMessage, Topology};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use platform::amqp::headers::{Death, deaths, header_str, table_json, uint};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// Most messages one replay or purge looks at (and holds unacked at once). A
/// message beyond it is reported as not found; run the command again.
pub const SCAN_MAX: u16 = 10_000;
/// Most messages `list` reads to find the oldest one.
pub const LIST_SCAN_MAX: u16 = 1_000;
/// Most messages `show` returns.
pub const SHOW_LIMIT_MAX: u16 = 1_000;
/// How long to wait for the first delivery of a non-empty queue.
const FIRST_DELIVERY_WAIT: Duration = Duration::from_secs(2);
/// How long to wait for each next delivery before deciding the queue is drained.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// How long a purge looks again for a message another read holds unacked, and how
/// often.
const UNACKED_WAIT: Duration = Duration::from_secs(3);
const UNACKED_POLL: Duration = Duration::from_millis(200);
/// How long to wait for the broker to confirm one replayed message.
const CONFIRM_WAIT: Duration = Duration::from_secs(10);

/// Where the messages of a dead-letter queue go back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlqKind {
    /// Sequencer commands: back to the commands exchange, routed by the partition of
    /// the command's `show_id`.
    Commands,
    /// Payment saga messages (booking events, pay requests, webhooks): back to the
    /// saga queue they came from (`x-source-queue`, or the broker's `x-death`).
    /// A refund the gateway refused for good is also parked here for operators;
    /// replaying it asks the saga again, which helps only once its cause is fixed.
    Payments,
    /// Notifier events (an email the SMTP server refused for good, or one that kept
    /// failing): back to the notifier queue. A replayed event is sent again even
    /// though its first send was recorded as failed; fix the address first.
    Notifier,
}

/// One dead-letter queue of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterQueue {
    pub name: String,
    pub kind: DlqKind,
}

/// Every dead-letter queue of `topo`. A new one is added here, and only here.
pub fn registry(topo: &Topology) -> Vec<DeadLetterQueue> {
    vec![
        DeadLetterQueue {
            name: topo.commands_dlq(),
            kind: DlqKind::Commands,
        },
        DeadLetterQueue {
            name: topo.payments_dlq(),
            kind: DlqKind::Payments,
        },
        DeadLetterQueue {
            name: topo.notifier_dlq(),
            kind: DlqKind::Notifier,
        },
    ]
}

/// The registry's queue called `queue` (the full name as `list` prints it, or the
/// name without the deployment's prefix). Any other name is refused.
pub fn resolve(topo: &Topology, queue: &str) -> Result<DeadLetterQueue, OpsError> {
    let all = registry(topo);
    let prefixed = format!("{}{queue}", topo.prefix);
    all.iter()
        .find(|q| q.name == queue)
        .or_else(|| all.iter().find(|q| q.name == prefixed))
        .cloned()
        .ok_or_else(|| OpsError::UnknownQueue {
            queue: queue.to_owned(),
            known: all
                .iter()
                .map(|q| q.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// One dead-letter queue at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct DlqSummary {
    pub queue: String,
    /// Ready messages (a passive declare; messages another operation holds right
    /// now are not counted).
    pub messages: u32,
    /// Age of the oldest message, among the first [`LIST_SCAN_MAX`]; `None` if empty.
    pub oldest_age_secs: Option<u64>,
}

/// A dead-lettered message, decoded for people.
#[derive(Debug, Clone, Serialize)]
pub struct DlqMessage {
    pub message_id: Option<String>,
    /// `x-dead-letter-reason`, else the broker's `x-death` reason (e.g. `delivery_limit`).
    pub reason: Option<String>,
    /// How many times it was dead-lettered, as far as its headers tell.
    pub death_count: u64,
    /// Every time it was dead-lettered, oldest first (`{reason, source, at}`, `at`
    /// in Unix seconds): kept through replays, so the first reason is never lost.
    pub history: Vec<Death>,
    /// `x-source-queue`, else the queue of the broker's latest `x-death` entry.
    pub source_queue: Option<String>,
    /// Seconds since it was dead-lettered (or published, when only that is known).
    pub age_secs: Option<u64>,
    pub content_type: Option<String>,
    /// Every header, as JSON.
    pub headers: serde_json::Value,
    /// The body as JSON when it parses, else as a (lossy) string.
    pub body: serde_json::Value,
    /// The body as it is.
    #[serde(skip)]
    pub raw: Vec<u8>,
    /// The AMQP properties as they are (what a replay decides on).
    #[serde(skip)]
    pub properties: BasicProperties,
}

/// Which messages an operation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every message with one of these message ids (all copies of an id).
    Ids(Vec<String>),
    All,
}

impl Selection {
    fn picks(&self, message_id: Option<&str>) -> bool {
        match self {
            Selection::All => true,
            Selection::Ids(ids) => message_id.is_some_and(|m| ids.iter().any(|i| i == m)),
        }
    }

    /// The asked ids no message had.
    fn not_found<'a>(&self, seen: impl Iterator<Item = &'a DlqMessage>) -> Vec<String> {
        match self {
            Selection::All => vec![],
            Selection::Ids(ids) => {
                let seen: BTreeSet<&str> = seen.filter_map(|m| m.message_id.as_deref()).collect();
                let mut missing: Vec<String> = ids
                    .iter()
                    .filter(|i| !seen.contains(i.as_str()))
                    .cloned()
                    .collect();
                missing.sort();
                missing.dedup();
                missing
            }
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayOutcome {
    /// Messages published back to their source (and removed from the queue).
    pub replayed: usize,
    /// Asked ids no message had.
    pub not_found: Vec<String>,
    /// Selected messages that cannot be routed back (they stay in the queue).
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub message_id: Option<String>,
    pub reason: String,
}

/// What a purge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeOutcome {
    pub removed: usize,
    pub not_found: Vec<String>,
}

/// The selected messages of a queue, read and put back (for a dry run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Peeked {
    pub messages: Vec<DlqMessage>,
    pub not_found: Vec<String>,
}

/// Every dead-letter queue with its message count and oldest message age.
#[tracing::instrument(skip_all)]
pub async fn list(conn: &Connection, topo: &Topology) -> Result<Vec<DlqSummary>, OpsError> {
    let now = now_secs();
    let mut out = Vec::new();
    for q in registry(topo) {
        let taken = Taken::take(conn, &q.name, LIST_SCAN_MAX).await?;
        let oldest = taken
            .deliveries
            .iter()
            .filter_map(|d| death_time(&d.properties))
            .min();
        let messages = taken.available;
        taken.put_back().await?;
        out.push(DlqSummary {
            queue: q.name,
            messages,
            oldest_age_secs: oldest.map(|t| now.saturating_sub(t)),
        });
    }
    Ok(out)
}

/// Up to `limit` messages of `queue`, all left in the queue.
#[tracing::instrument(skip(conn, topo))]
pub async fn show(
    conn: &Connection,
    topo: &Topology,
    queue: &str,
    limit: u16,
) -> Result<Vec<DlqMessage>, OpsError> {
    let q = resolve(topo, queue)?;
    let taken = Taken::take(conn, &q.name, limit.clamp(1, SHOW_LIMIT_MAX)).await?;
    let now = now_secs();
    let messages = taken.deliveries.iter().map(|d| describe(d, now)).collect();
    taken.put_back().await?;
    Ok(messages)
}

/// The selected messages of `queue` (up to [`SCAN_MAX`] looked at), all left in
/// the queue.
#[tracing::instrument(skip(conn, topo))]
pub async fn peek(
    conn: &Connection,
    topo: &Topology,
    queue: &str,
    selection: &Selection,
) -> Result<Peeked, OpsError> {
    let q = resolve(topo, queue)?;
    let taken = Taken::take(conn, &q.name, SCAN_MAX).await?;
    let now = now_secs();
    let messages: Vec<DlqMessage> = taken
        .deliveries
        .iter()
        .map(|d| describe(d, now))
        .filter(|m| selection.picks(m.message_id.as_deref()))
        .collect();
    taken.put_back().await?;
    Ok(Peeked {
        not_found: selection.not_found(messages.iter()),
        messages,
    })
}

/// Removes only the messages with these ids; every other message stays. A message
/// not found at first is looked for again for up to [`UNACKED_WAIT`]: another read
/// of the queue (the console's listing, a dry run) holds what it looked at unacked
/// until the broker has taken its requeue, and meanwhile the message is not ready.
#[tracing::instrument(skip(conn, topo))]
pub async fn purge(
    conn: &Connection,
    topo: &Topology,
    queue: &str,
    ids: &[String],
) -> Result<PurgeOutcome, OpsError> {
    let q = resolve(topo, queue)?;
    let mut out = PurgeOutcome::default();
    let mut picked = Vec::new();
    let started = std::time::Instant::now();
    let mut looks = 0;
    loop {
        let missing = Selection::Ids(ids.to_vec()).not_found(picked.iter());
        if missing.is_empty() {
            break;
        }
        let selection = Selection::Ids(missing);
        let taken = Taken::take(conn, &q.name, SCAN_MAX).await?;
        let now = now_secs();
        for d in &taken.deliveries {
            let m = describe(d, now);
            if selection.picks(m.message_id.as_deref()) {
                d.acker.ack(BasicAckOptions::default()).await?;
                out.removed += 1;
                tracing::warn!(queue = %q.name, message_id = ?m.message_id, "purged");
                picked.push(m);
            }
        }
        taken.put_back().await?;
        if started.elapsed() >= UNACKED_WAIT {
            break;
        }
        if looks == 0 {
            let missing = Selection::Ids(ids.to_vec()).not_found(picked.iter());
            if !missing.is_empty() {
                tracing::info!(queue = %q.name, ?missing, "purge: not in the queue yet, looking again");
            }
        }
        looks += 1;
        tokio::time::sleep(UNACKED_POLL).await;
    }
    out.not_found = Selection::Ids(ids.to_vec()).not_found(picked.iter());
    Ok(out)
}

fn now_secs() -> u64 {
    u64::try_from(platform::now_millis().0 / 1000).unwrap_or(0)
}

fn describe(d: &Delivery, now_secs: u64) -> DlqMessage {
    describe_parts(&d.properties, &d.data, now_secs)
}

/// Decodes one message (pure, for tests).
pub fn describe_parts(props: &BasicProperties, body: &[u8], now_secs: u64) -> DlqMessage {
    let headers = props.headers().clone().unwrap_or_default();
    let app_reason = header_str(&headers, DEAD_LETTER_REASON_HEADER);
    let broker = x_death(&headers);
    let latest = broker.first();
    let broker_count: u64 = broker.iter().map(|t| uint(t.inner().get("count"))).sum();
    let history = deaths(&headers);
    // The history ends with one entry per broker death record (which may count
    // several deaths): the rest were recorded by the application.
    let recorded = (history.len() - broker.len().min(history.len())) as u64;
    DlqMessage {
        history,
        message_id: props.message_id().as_ref().map(|m| m.to_string()),
        reason: app_reason
            .clone()
            .or_else(|| latest.and_then(|t| header_str(t, "reason"))),
        death_count: broker_count + recorded.max(u64::from(app_reason.is_some())),
        source_queue: header_str(&headers, SOURCE_QUEUE_HEADER)
            .or_else(|| latest.and_then(|t| header_str(t, "queue"))),
        age_secs: death_time(props).map(|t| now_secs.saturating_sub(t)),
        content_type: props.content_type().as_ref().map(|c| c.to_string()),
        headers: table_json(&headers),
        body: serde_json::from_slice(body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into())),
        raw: body.to_vec(),
        properties: props.clone(),
    }
}

/// When the message was dead-lettered, in Unix seconds: the runner's copy is
/// stamped when it is dead-lettered; the broker records the time in `x-death`.
fn death_time(props: &BasicProperties) -> Option<u64> {
    let headers = props.headers().clone().unwrap_or_default();
    let stamped = *props.timestamp();
    if headers.contains_key(DEAD_LETTER_REASON_HEADER) {
        return stamped;
    }
    x_death(&headers)
        .first()
        .and_then(|t| match t.inner().get("time") {
            Some(AMQPValue::Timestamp(s)) => Some(*s),
            _ => None,
        })
        .or(stamped)
}

/// The broker's `x-death` entries, latest first.
fn x_death(headers: &FieldTable) -> Vec<FieldTable> {
    match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a
            .as_slice()
            .iter()
            .filter_map(|v| match v {
                AMQPValue::FieldTable(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldArray, LongString};
    use platform::amqp::headers::value_json;

    fn long(s: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(s.to_owned()))
    }

    fn topo() -> Topology {
        Topology::new("t1.", 4)
    }

    #[test]
    fn only_registered_queues_resolve_with_or_without_the_prefix() {
        let t = topo();
        assert_eq!(
            resolve(&t, "t1.booking.commands.dlq").unwrap().name,
            t.commands_dlq()
        );
        assert_eq!(
            resolve(&t, "booking.commands.dlq").unwrap().name,
            t.commands_dlq()
        );
        let err = resolve(&t, "t1.booking.commands.p0").unwrap_err();
        assert!(matches!(err, OpsError::UnknownQueue { .. }), "{err}");
        assert!(err.to_string().contains("t1.booking.commands.dlq"), "{err}");
    }

    #[test]
    fn a_runner_dead_letter_shows_its_reason_source_and_age() {
        let mut h = FieldTable::default();
        h.insert(
            DEAD_LETTER_REASON_HEADER.into(),
            long("unparseable command: x"),
        );
        h.insert(SOURCE_QUEUE_HEADER.into(), long("t1.booking.commands.p0"));
        h.insert("x-request-id".into(), long("r-1"));
        let props = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_timestamp(1_000)
            .with_headers(h);
        let m = describe_parts(&props, br#"{"a":1}"#, 1_042);
        assert_eq!(m.message_id.as_deref(), Some("m-1"));
        assert_eq!(m.reason.as_deref(), Some("unparseable command: x"));
        assert_eq!(m.source_queue.as_deref(), Some("t1.booking.commands.p0"));
        assert_eq!(m.death_count, 1);
        assert_eq!(m.age_secs, Some(42));
        assert_eq!(m.body, serde_json::json!({"a": 1}));
        assert_eq!(m.headers["x-request-id"], "r-1");
    }

    #[test]
    fn a_broker_dead_letter_is_read_from_x_death_and_a_bad_body_is_a_string() {
        let mut death = FieldTable::default();
        death.insert("count".into(), AMQPValue::LongLongInt(1));
        death.insert("reason".into(), long("delivery_limit"));
        death.insert("queue".into(), long("t1.booking.commands.p3"));
        death.insert("time".into(), AMQPValue::Timestamp(500));
        let mut h = FieldTable::default();
        h.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
        );
        let props = BasicProperties::default()
            .with_timestamp(100)
            .with_headers(h);
        let m = describe_parts(&props, b"\xffnot json", 600);
        assert_eq!(m.reason.as_deref(), Some("delivery_limit"));
        assert_eq!(m.source_queue.as_deref(), Some("t1.booking.commands.p3"));
        assert_eq!(m.death_count, 1);
        assert_eq!(
            m.age_secs,
            Some(100),
            "from x-death time, not the publish time"
        );
        assert!(m.body.as_str().unwrap().ends_with("not json"));
        assert_eq!(m.headers["x-death"][0]["reason"], "delivery_limit");
        assert_eq!(m.message_id, None);
    }

    #[test]
    fn a_replayed_message_keeps_its_headers_but_not_its_deaths() {
        let mut h = FieldTable::default();
        h.insert(DEAD_LETTER_REASON_HEADER.into(), long("x"));
        h.insert(SOURCE_QUEUE_HEADER.into(), long("q"));
        h.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::default()),
        );
        h.insert("x-delivery-count".into(), AMQPValue::LongInt(3));
        h.insert("x-request-id".into(), long("r-1"));
        let kept = replay_headers(Some(&h));
        let keys: Vec<&str> = kept.inner().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                contracts::topology::DEAD_LETTER_HISTORY_HEADER,
                "x-request-id"
            ]
        );
        let history =
            describe_parts(&BasicProperties::default().with_headers(kept), b"{}", 0).history;
        assert_eq!(
            history.len(),
            1,
            "the reason it died for is kept: {history:?}"
        );
        assert_eq!(
            (history[0].reason.as_str(), history[0].source.as_str()),
            ("x", "q")
        );
        assert!(replay_headers(None).inner().is_empty());
    }

    #[test]
    fn a_selection_by_id_reports_what_it_did_not_find() {
        let props = BasicProperties::default().with_message_id("a".into());
        let m = describe_parts(&props, b"{}", 0);
        let sel = Selection::Ids(vec!["a".into(), "b".into(), "b".into()]);
        assert!(sel.picks(Some("a")));
        assert!(!sel.picks(None));
        assert_eq!(sel.not_found([m].iter()), ["b"]);
        assert!(Selection::All.picks(None));
    }

    #[test]
    fn field_values_become_json() {
        assert_eq!(value_json(&AMQPValue::Void), serde_json::Value::Null);
        assert_eq!(
            value_json(&AMQPValue::DecimalValue(lapin::types::DecimalValue {
                scale: 2,
                value: 5
            })),
            "0.05"
        );
        assert_eq!(value_json(&AMQPValue::Boolean(true)), true);
    }
}
