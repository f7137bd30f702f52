//! Reading and writing AMQP headers: the broker's delivery count, the dead-letter
//! reason and source queue, and header values as strings, numbers or JSON.

use contracts::topology::{
    DEAD_LETTER_HISTORY_HEADER, DEAD_LETTER_REASON_HEADER, SOURCE_QUEUE_HEADER,
};
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};
use serde::Serialize;

/// Headers that describe a death or a redelivery: they belong to the queue a
/// message died in, so a dead-lettered copy or a replayed message leaves without
/// them.
pub const DEATH_HEADERS: [&str; 8] = [
    "x-death",
    "x-first-death-reason",
    "x-first-death-queue",
    "x-first-death-exchange",
    "x-last-death-reason",
    "x-last-death-queue",
    "x-last-death-exchange",
    // Added by a quorum queue on redelivery; it belongs to the dead-letter queue.
    "x-delivery-count",
];

/// A header value holding `s` as an AMQP long string.
pub fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.to_owned()))
}

/// How often the broker has delivered `d` before (quorum queues count redeliveries
/// in `x-delivery-count`); 0 on a first delivery.
pub fn delivery_count(d: &Delivery) -> u32 {
    d.properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned())
        .and_then(|v| match v {
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongUInt(n) => Some(n),
            AMQPValue::ShortInt(n) => u32::try_from(n).ok(),
            _ => None,
        })
        .unwrap_or(0)
}

/// `headers` with the dead-letter `reason` and the queue the message came from, and
/// this death appended to its history ([`DEAD_LETTER_HISTORY_HEADER`]).
pub fn with_reason(mut headers: FieldTable, reason: &str, source_queue: &str) -> FieldTable {
    let at = u64::try_from(crate::now_millis().0 / 1000).unwrap_or(0);
    let mut history = history_values(&headers);
    history.push(death_entry(reason, source_queue, at));
    headers.insert(
        DEAD_LETTER_HISTORY_HEADER.into(),
        AMQPValue::FieldArray(FieldArray::from(history)),
    );
    headers.insert(DEAD_LETTER_REASON_HEADER.into(), long(reason));
    headers.insert(SOURCE_QUEUE_HEADER.into(), long(source_queue));
    headers
}

/// One time a message was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Death {
    pub reason: String,
    /// The queue it died in (where a replay sends it back).
    pub source: String,
    /// Unix seconds.
    pub at: Option<u64>,
}

fn death_entry(reason: &str, source: &str, at: u64) -> AMQPValue {
    let mut t = FieldTable::default();
    t.insert("reason".into(), long(reason));
    t.insert("source".into(), long(source));
    t.insert("at".into(), AMQPValue::Timestamp(at));
    AMQPValue::FieldTable(t)
}

fn history_values(headers: &FieldTable) -> Vec<AMQPValue> {
    match headers.inner().get(DEAD_LETTER_HISTORY_HEADER) {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        _ => vec![],
    }
}

fn timestamp(v: Option<&AMQPValue>) -> Option<u64> {
    match v? {
        AMQPValue::Timestamp(t) => Some(*t),
        other => Some(uint(Some(other))).filter(|n| *n > 0),
    }
}

/// Every time the message was dead-lettered, oldest first: the history the
/// application keeps, then the broker's own `x-death` entries not yet in it (a
/// message the broker dead-lettered, e.g. past its delivery limit). A message
/// dead-lettered before the history existed shows its one `x-dead-letter-reason`.
pub fn deaths(headers: &FieldTable) -> Vec<Death> {
    let mut out: Vec<Death> = history_values(headers)
        .iter()
        .filter_map(|v| match v {
            AMQPValue::FieldTable(t) => Some(Death {
                reason: header_str(t, "reason").unwrap_or_default(),
                source: header_str(t, "source").unwrap_or_default(),
                at: timestamp(t.inner().get("at")),
            }),
            _ => None,
        })
        .collect();
    if out.is_empty()
        && let Some(reason) = header_str(headers, DEAD_LETTER_REASON_HEADER)
    {
        out.push(Death {
            reason,
            source: header_str(headers, SOURCE_QUEUE_HEADER).unwrap_or_default(),
            at: None,
        });
    }
    // The broker lists its deaths latest first, one entry per (queue, reason).
    if let Some(AMQPValue::FieldArray(a)) = headers.inner().get("x-death") {
        for t in a.as_slice().iter().rev() {
            if let AMQPValue::FieldTable(t) = t {
                out.push(Death {
                    reason: header_str(t, "reason").unwrap_or_default(),
                    source: header_str(t, "queue").unwrap_or_default(),
                    at: timestamp(t.inner().get("time")),
                });
            }
        }
    }
    out
}

/// `headers` ready to be published again (a dead-letter replay): without the
/// broker's death headers and the latest reason and source, with every death so
/// far kept in the history, so a message parked again keeps its first reason.
pub fn for_replay(headers: Option<&FieldTable>) -> FieldTable {
    let all = deaths(&headers.cloned().unwrap_or_default());
    let mut map = without_deaths(headers).inner().clone();
    map.retain(|k, _| {
        ![
            DEAD_LETTER_REASON_HEADER,
            SOURCE_QUEUE_HEADER,
            DEAD_LETTER_HISTORY_HEADER,
        ]
        .contains(&k.as_str())
    });
    let mut kept = FieldTable::from(map);
    if !all.is_empty() {
        let history = all
            .iter()
            .map(|d| death_entry(&d.reason, &d.source, d.at.unwrap_or(0)))
            .collect::<Vec<_>>();
        kept.insert(
            DEAD_LETTER_HISTORY_HEADER.into(),
            AMQPValue::FieldArray(FieldArray::from(history)),
        );
    }
    kept
}

/// `headers` without the broker's death and redelivery headers ([`DEATH_HEADERS`]).
pub fn without_deaths(headers: Option<&FieldTable>) -> FieldTable {
    let mut map = headers.map(|h| h.inner().clone()).unwrap_or_default();
    map.retain(|k, _| !DEATH_HEADERS.contains(&k.as_str()));
    FieldTable::from(map)
}

/// A string header (long or short string), if there is one.
pub fn header_str(t: &FieldTable, key: &str) -> Option<String> {
    match t.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// A whole-number header value; 0 when absent, negative or not a number.
pub fn uint(v: Option<&AMQPValue>) -> u64 {
    match v {
        Some(AMQPValue::ShortShortInt(n)) => u64::try_from(*n).unwrap_or(0),
        Some(AMQPValue::ShortShortUInt(n)) => u64::from(*n),
        Some(AMQPValue::ShortInt(n)) => u64::try_from(*n).unwrap_or(0),
        Some(AMQPValue::ShortUInt(n)) => u64::from(*n),
        Some(AMQPValue::LongInt(n)) => u64::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongUInt(n)) => u64::from(*n),
        Some(AMQPValue::LongLongInt(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// A header table as a JSON object.
pub fn table_json(t: &FieldTable) -> serde_json::Value {
    serde_json::Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), value_json(v)))
            .collect(),
    )
}

/// One AMQP field value as JSON (timestamps stay Unix seconds).
pub fn value_json(v: &AMQPValue) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        AMQPValue::Boolean(b) => J::Bool(*b),
        AMQPValue::ShortShortInt(n) => J::from(*n),
        AMQPValue::ShortShortUInt(n) => J::from(*n),
        AMQPValue::ShortInt(n) => J::from(*n),
        AMQPValue::ShortUInt(n) => J::from(*n),
        AMQPValue::LongInt(n) => J::from(*n),
        AMQPValue::LongUInt(n) => J::from(*n),
        AMQPValue::LongLongInt(n) => J::from(*n),
        AMQPValue::Float(f) => J::from(f64::from(*f)),
        AMQPValue::Double(f) => J::from(*f),
        AMQPValue::DecimalValue(d) => J::String(decimal(d.value, d.scale)),
        AMQPValue::ShortString(s) => J::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => J::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::FieldArray(a) => J::Array(a.as_slice().iter().map(value_json).collect()),
        AMQPValue::Timestamp(t) => J::from(*t),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::ByteArray(b) => J::String(String::from_utf8_lossy(b.as_slice()).into_owned()),
        AMQPValue::Void => J::Null,
    }
}

fn decimal(value: u32, scale: u8) -> String {
    let digits = value.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_lettered_copy_keeps_its_own_headers_but_not_the_brokers() {
        let mut h = FieldTable::default();
        h.insert("x-delivery-count".into(), AMQPValue::LongInt(3));
        h.insert("x-death".into(), AMQPValue::Void);
        h.insert("x-request-id".into(), long("r-1"));
        let h = with_reason(without_deaths(Some(&h)), "bad", "q1");
        let keys: Vec<&str> = h.inner().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                DEAD_LETTER_HISTORY_HEADER,
                DEAD_LETTER_REASON_HEADER,
                "x-request-id",
                SOURCE_QUEUE_HEADER
            ]
        );
        assert_eq!(
            header_str(&h, DEAD_LETTER_REASON_HEADER).as_deref(),
            Some("bad")
        );
        assert_eq!(header_str(&h, SOURCE_QUEUE_HEADER).as_deref(), Some("q1"));
        assert_eq!(header_str(&h, "missing"), None);
    }

    #[test]
    fn a_message_dead_lettered_again_keeps_every_reason_in_order() {
        let first = with_reason(
            FieldTable::default(),
            "refund failed: refund_declined",
            "saga",
        );
        // Replayed (reason and source go, the history stays), then parked again.
        let replayed = for_replay(Some(&first));
        assert_eq!(header_str(&replayed, DEAD_LETTER_REASON_HEADER), None);
        assert_eq!(header_str(&replayed, SOURCE_QUEUE_HEADER), None);
        let second = with_reason(replayed, "unparseable message: x", "saga");
        let d = deaths(&second);
        let reasons: Vec<&str> = d.iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(
            reasons,
            ["refund failed: refund_declined", "unparseable message: x"]
        );
        assert!(d.iter().all(|d| d.source == "saga" && d.at.is_some()));
    }

    #[test]
    fn the_brokers_deaths_join_the_history_at_a_replay() {
        let mut death = FieldTable::default();
        death.insert("reason".into(), long("delivery_limit"));
        death.insert("queue".into(), long("p3"));
        death.insert("time".into(), AMQPValue::Timestamp(500));
        let mut h = FieldTable::default();
        h.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
        );
        let replayed = for_replay(Some(&h));
        assert!(!replayed.inner().contains_key("x-death"));
        assert_eq!(
            deaths(&replayed),
            [Death {
                reason: "delivery_limit".into(),
                source: "p3".into(),
                at: Some(500)
            }]
        );
    }

    #[test]
    fn whole_numbers_of_every_width_read_as_u64() {
        assert_eq!(uint(Some(&AMQPValue::ShortShortUInt(7))), 7);
        assert_eq!(uint(Some(&AMQPValue::LongLongInt(9))), 9);
        assert_eq!(uint(Some(&AMQPValue::LongInt(-1))), 0);
        assert_eq!(uint(None), 0);
    }
}
