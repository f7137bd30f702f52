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

/// Starts the test's local SMS provider (in memory) and points the settings at it.
pub(crate) async fn start_sms_provider(
    settings: &mut Settings,
    stop: &CancellationToken,
) -> Arc<smtp_sink::sms::SmsState> {
    use secrecy::ExposeSecret;
    let n = &mut settings.notifier;
    if n.sms_account_sid.is_empty() {
        n.sms_account_sid = "ACtest".into();
    }
    if n.sms_auth_token.expose_secret().is_empty() {
        n.sms_auth_token = "test-sms-auth-token".to_owned().into();
    }
    let provider = smtp_sink::sms::SmsProvider::bind(smtp_sink::sms::SmsConfig {
        listen: "127.0.0.1:0".into(),
        account_sid: n.sms_account_sid.clone(),
        auth_token: n.sms_auth_token.expose_secret().to_owned(),
        dir: None,
    })
    .await
    .expect("start the sms provider");
    n.sms_url = provider.base_url();
    let state = provider.state();
    tokio::spawn(provider.run_until_stopped(stop.clone().cancelled_owned()));
    state
}

impl TestSystem {
    /// The SMS the test's provider took so far.
    pub fn sms_messages(&self) -> Vec<smtp_sink::sms::SmsMessage> {
        self.sms.messages()
    }

    /// Waits until the provider took at least `n` SMS, and returns them.
    pub async fn wait_sms(&self, n: usize, max: Duration) -> Vec<smtp_sink::sms::SmsMessage> {
        self.until_some(max, &format!("{n} SMS"), || async {
            let got = self.sms_messages();
            (got.len() >= n).then_some(got)
        })
        .await
    }

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
