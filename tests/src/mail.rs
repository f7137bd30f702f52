//! The test's local SMTP sink and reading what it received.

use crate::{SystemOptions, TestSystem};
use platform::Settings;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Starts the test's local SMTP sink on port 0 with its own mail folder and points
/// the notifier at it (fast retries, so tests do not wait long).
pub(crate) async fn start_smtp_sink(
    opts: &SystemOptions,
    settings: &mut Settings,
    stop: &CancellationToken,
) -> (std::path::PathBuf, Arc<smtp_sink::SinkStats>) {
    let dir = std::env::temp_dir().join(format!(
        "smtp-sink-{}",
        settings.amqp.prefix.trim_end_matches('.')
    ));
    let sink = smtp_sink::SmtpSink::bind(smtp_sink::SinkConfig {
        listen: "127.0.0.1:0".into(),
        dir: dir.clone(),
        refuse_first: opts.smtp_refuse_first,
        reject_pattern: opts.smtp_reject_pattern.clone(),
    })
    .await
    .expect("start the smtp sink");
    settings.notifier.smtp_host = "127.0.0.1".into();
    settings.notifier.smtp_port = sink.port();
    settings.notifier.smtp_tls = "none".into();
    settings.notifier.retry_initial_ms = 50;
    settings.notifier.retry_max_ms = 200;
    settings.notifier.smtp_timeout_ms = 5000;
    let stats = sink.stats();
    tokio::spawn(sink.run_until_stopped(stop.clone().cancelled_owned()));
    (dir, stats)
}

impl TestSystem {
    /// The emails the test's SMTP sink received so far.
    pub fn emails(&self) -> Vec<smtp_sink::StoredMessage> {
        smtp_sink::read_messages(&self.mail_dir).unwrap_or_default()
    }

    /// Waits until the sink holds at least `n` emails, and returns them.
    pub async fn wait_emails(&self, n: usize, max: Duration) -> Vec<smtp_sink::StoredMessage> {
        self.until_some(max, &format!("{n} emails"), || async {
            let got = self.emails();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}
