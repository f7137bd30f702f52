//! The trace context of the work in progress: each unit of work (an HTTP request, a
//! consumed message) runs inside [`scope`] with its `traceparent`, and whatever it
//! publishes carries [`current`] on — in the envelope and as the AMQP
//! `traceparent` header ([`contracts::trace`]).

use contracts::TraceParent;
use contracts::trace::TRACEPARENT_HEADER;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};
use std::future::Future;

tokio::task_local! {
    static CURRENT: Option<TraceParent>;
}

/// Runs `work` with `trace` as the current trace context.
pub async fn scope<F: Future>(trace: Option<TraceParent>, work: F) -> F::Output {
    CURRENT.scope(trace, work).await
}

/// The trace of the work in progress, if any.
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(|t| *t).ok().flatten()
}

/// The current trace's id for logs (empty outside a trace).
pub fn current_id() -> String {
    current().map(|t| t.trace_id_hex()).unwrap_or_default()
}

/// Makes `span` a child of `trace` for the OpenTelemetry export (when enabled), so
/// exported spans carry the booking's trace id; without export it costs nothing.
pub fn attach(span: &tracing::Span, trace: Option<TraceParent>) {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let Some(t) = trace else { return };
    let flags = if t.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(
        TraceId::from_bytes(t.trace_id.to_be_bytes()),
        SpanId::from_bytes(t.span_id.to_be_bytes()),
        flags,
        true,
        TraceState::default(),
    );
    drop(span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote)));
}

/// Adds `traceparent` to AMQP headers.
pub fn add_header(headers: &mut FieldTable, trace: Option<TraceParent>) {
    if let Some(t) = trace {
        headers.insert(
            TRACEPARENT_HEADER.into(),
            AMQPValue::LongString(LongString::from(t.to_string())),
        );
    }
}

/// The `traceparent` of a delivered message, if it has a valid one.
pub fn from_properties(props: &BasicProperties) -> Option<TraceParent> {
    let headers = props.headers().as_ref()?;
    let value = headers.inner().get(TRACEPARENT_HEADER)?;
    let text = match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        _ => return None,
    };
    TraceParent::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scope_sets_the_current_trace_and_headers_round_trip() {
        assert!(current().is_none());
        let t = TraceParent::new_root();
        let seen = scope(Some(t), async { current() }).await;
        assert_eq!(seen, Some(t));
        assert!(current().is_none());
        let mut headers = FieldTable::default();
        add_header(&mut headers, Some(t));
        let props = BasicProperties::default().with_headers(headers);
        assert_eq!(from_properties(&props), Some(t));
        assert_eq!(from_properties(&BasicProperties::default()), None);
    }

    #[tokio::test]
    async fn messages_published_in_a_scope_carry_its_traceparent() {
        let t = TraceParent::new_root();
        let props = scope(Some(t), async {
            crate::amqp::json_properties("m1", FieldTable::default())
        })
        .await;
        assert_eq!(from_properties(&props), Some(t));
        // An explicit header wins over the scope's.
        let other = TraceParent::new_root();
        let mut headers = FieldTable::default();
        add_header(&mut headers, Some(other));
        let props = scope(Some(t), async {
            crate::amqp::json_properties("m2", headers)
        })
        .await;
        assert_eq!(from_properties(&props), Some(other));
        let outside = crate::amqp::json_properties("m3", FieldTable::default());
        assert_eq!(from_properties(&outside), None);
    }
}
