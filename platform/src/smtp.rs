//! The SMTP connection of every e-mail the platform sends: booking e-mails from the
//! notifier and account e-mails (verification, password reset) from ingress both
//! read `notifier.smtp_*` and `notifier.from` here.

use crate::settings::NotifierSettings;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use std::time::Duration;

pub type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

/// The (pooled) SMTP transport of `s` and its sender address.
pub fn transport(s: &NotifierSettings) -> anyhow::Result<(SmtpTransport, Mailbox)> {
    let builder = match s.smtp_tls.as_str() {
        // Plain SMTP: only for a local sink or a relay on a trusted network.
        "none" => SmtpTransport::builder_dangerous(&s.smtp_host),
        "starttls" => SmtpTransport::starttls_relay(&s.smtp_host)?,
        "tls" => SmtpTransport::relay(&s.smtp_host)?,
        other => anyhow::bail!("notifier.smtp_tls must be none, starttls or tls, not {other:?}"),
    };
    let mut builder = builder
        .port(s.smtp_port)
        .timeout(Some(Duration::from_millis(s.smtp_timeout_ms)));
    if !s.smtp_username.is_empty() {
        builder = builder.credentials(Credentials::new(
            s.smtp_username.clone(),
            s.smtp_password.expose_secret().to_owned(),
        ));
    }
    let from = s
        .from
        .parse()
        .map_err(|e| anyhow::anyhow!("notifier.from {:?}: {e}", s.from))?;
    Ok((builder.build(), from))
}
