//! Logs, traces and metrics, set up once per process.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Flushes exported spans when dropped (at the end of `main`).
#[must_use = "spans are flushed when the guard is dropped"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            drop(p.force_flush());
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            drop(p.shutdown());
        }
    }
}

/// An output layer, under the filter (see [`init`]).
type BoxedLayer = Box<dyn Layer<Filtered> + Send + Sync>;
type Filtered = tracing_subscriber::layer::Layered<EnvFilter, Registry>;

/// Installs the global subscriber of process `service`: JSON log lines on stderr
/// (or human text with `format = "pretty"`), filtered by `RUST_LOG` or the configured
/// filter, and, when `otlp_endpoint` is set, the same spans exported over OTLP/HTTP
/// under the W3C trace ids that travel with each booking ([`crate::trace`]).
/// Later calls install nothing.
pub fn init(s: &crate::settings::TelemetrySettings, service: &'static str) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&s.filter));
    let fmt: BoxedLayer = if s.format == "pretty" {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed()
    };
    let (otel, provider) = match otlp_layer(&s.otlp_endpoint, service) {
        Ok(Some((layer, provider))) => (Some(layer), Some(provider)),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("OTLP export disabled: {e}");
            (None, None)
        }
    };
    // The filter is the stack's own layer (global), not a per-layer filter on the
    // output: a per-layer `EnvFilter` keeps each event's verdict in a thread-local
    // between `enabled` and the write, and with a target directive more verbose than
    // the default (`info,ingress=debug`) it dropped most of ingress's lines, those
    // of requests included (the test `tests/tests/pan.rs` failed on it).
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt.and_then(otel))
        .try_init()
        .is_ok();
    TelemetryGuard {
        provider: provider.filter(|_| installed),
    }
}

/// Installs the log subscriber only (no export); see [`init`].
pub fn init_logs(s: &crate::settings::TelemetrySettings) {
    let plain = crate::settings::TelemetrySettings {
        otlp_endpoint: String::new(),
        ..s.clone()
    };
    drop(init(&plain, "booking"));
}

/// The span exporter for `endpoint`, or `None` when export is off.
fn otlp_layer(
    endpoint: &str,
    service: &'static str,
) -> anyhow::Result<Option<(BoxedLayer, SdkTracerProvider)>> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        return Ok(None);
    }
    // The exporter's HTTP client is reqwest on rustls without a default provider.
    drop(rustls::crypto::ring::default_provider().install_default());
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service))
        .boxed();
    Ok(Some((layer, provider)))
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first call).
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("static buckets are valid")
                // Batch sizes are counts, not seconds.
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("runner_batch_size".into()),
                    &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
                )
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then ours stays
            // unused and /metrics shows what it has.
            drop(metrics::set_global_recorder(recorder));
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn recorded_metrics_are_rendered() {
        let h = super::prometheus();
        metrics::gauge!("probe_gauge", "k" => "v").set(3.0);
        metrics::counter!("probe_counter").increment(2);
        let text = h.render();
        assert!(text.contains("probe_gauge"), "{text}");
        assert!(text.contains("probe_counter"), "{text}");
    }
}
