//! W3C Trace Context (`traceparent`): one trace id follows a booking from the HTTP
//! request through the command queue, the sequencer's events, the payment saga and
//! the notifier. It travels in AMQP headers (where tracing tools look) and in the
//! envelopes (so that it survives the outbox and a replay from a dead-letter queue).
//!
//! Format (version 00): `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`,
//! lower-case; an all-zero trace or span id is invalid.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The AMQP header (and HTTP header) name.
pub const TRACEPARENT_HEADER: &str = "traceparent";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TraceParent {
    pub trace_id: u128,
    /// The span that caused the message (its parent span, for the receiver).
    pub span_id: u64,
    pub sampled: bool,
}

impl TraceParent {
    /// A new trace (random ids, sampled).
    pub fn new_root() -> Self {
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        Self {
            trace_id: (u128::from(a) << 64 | u128::from(b)).max(1),
            span_id: uuid::Uuid::new_v4().as_u64_pair().0.max(1),
            sampled: true,
        }
    }

    /// The same trace with a new span: what a receiver passes on for its own work.
    pub fn child(&self) -> Self {
        Self {
            span_id: uuid::Uuid::new_v4().as_u64_pair().0.max(1),
            ..*self
        }
    }

    /// The trace id as 32 lower-case hex digits (what logs carry as `trace_id`).
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// Parses a `traceparent` value; `None` when it is not a valid version-00 one
    /// (a future version's first four fields are read as the spec asks).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |p: &str, len: usize| {
            p.len() == len
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2)
            || version == "ff"
            || !hex(trace, 32)
            || !hex(span, 16)
            || !hex(flags, 2)
        {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

impl TryFrom<String> for TraceParent {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("{s:?} is not a W3C traceparent"))
    }
}

impl From<TraceParent> for String {
    fn from(t: TraceParent) -> String {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_round_trips() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceParent::parse(s).unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id, 0x00f0_67aa_0ba9_02b7);
        assert!(t.sampled);
        assert_eq!(t.to_string(), s);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<TraceParent>(&json).unwrap(), t);
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad:?} was accepted");
        }
        // A later version may append fields.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let root = TraceParent::new_root();
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.span_id, root.span_id);
        assert_ne!(TraceParent::new_root().trace_id, root.trace_id);
    }
}
