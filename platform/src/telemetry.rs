//! Logs and metrics, set up once per process.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber: JSON lines (or human text with
/// `format = "pretty"`), filtered by `RUST_LOG` or the configured filter.
/// Safe to call more than once (later calls do nothing).
pub fn init_logs(s: &crate::settings::TelemetrySettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&s.filter));
    let res = if s.format == "pretty" {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init()
    } else {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init()
    };
    drop(res);
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
