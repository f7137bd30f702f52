//! Reading and writing AMQP headers: the broker's delivery count, the dead-letter
//! reason and source queue, and header values as strings, numbers or JSON.

use contracts::topology::{DEAD_LETTER_REASON_HEADER, SOURCE_QUEUE_HEADER};
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable, LongString};

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

/// `headers` with the dead-letter `reason` and the queue the message came from.
pub fn with_reason(mut headers: FieldTable, reason: &str, source_queue: &str) -> FieldTable {
    headers.insert(DEAD_LETTER_REASON_HEADER.into(), long(reason));
    headers.insert(SOURCE_QUEUE_HEADER.into(), long(source_queue));
    headers
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
    fn whole_numbers_of_every_width_read_as_u64() {
        assert_eq!(uint(Some(&AMQPValue::ShortShortUInt(7))), 7);
        assert_eq!(uint(Some(&AMQPValue::LongLongInt(9))), 9);
        assert_eq!(uint(Some(&AMQPValue::LongInt(-1))), 0);
        assert_eq!(uint(None), 0);
    }
}
