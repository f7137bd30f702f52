//! Account emails (verification and password-reset links), sent by ingress over the
//! notifier's SMTP settings (`notifier.smtp_*`, `notifier.from`).
//!
//! Why ingress and not the notifier: these are not booking events (no partition, no
//! outbox), and the link is only useful while its token lives. They are sent after the
//! token's transaction commits, in a background task with bounded retries
//! (`notifier.send_attempts_max`, backoff from `notifier.retry_initial_ms`), so the
//! answer does not wait on SMTP: a password-reset request answers as fast for an
//! unknown email as for a known one. A mail lost to a crash is asked for again (a new
//! reset, "resend"). The token is in the body only, never in a log line.

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use platform::settings::NotifierSettings;
use std::time::Duration;

/// One account email, ready to send.
#[derive(Clone)]
pub struct AccountMail {
    to_email: String,
    to_name: String,
    /// For logs: which email it is (never the link).
    kind: &'static str,
    subject: String,
    text: String,
}

impl AccountMail {
    /// "Confirm your email": a link to the web app's `/verify-email?token=`.
    pub fn verify_email(
        settings: &platform::Settings,
        email: &str,
        name: &str,
        token: &str,
    ) -> Self {
        let link = format!(
            "{}/verify-email?token={token}",
            settings.ingress.public_url()
        );
        let hours = settings.auth.email_verification_ttl_secs / 3600;
        Self {
            to_email: email.to_owned(),
            to_name: name.to_owned(),
            kind: "verify_email",
            subject: "Confirm your email address".into(),
            text: format!(
                "Hello {name},\n\nConfirm that this is your email address by opening this link \
                 (valid for {hours} hours, once):\n\n{link}\n\nIf you did not create an account, \
                 ignore this email.\n"
            ),
        }
    }

    /// "Reset your password": a link to the web app's `/reset-password?token=`.
    pub fn password_reset(
        settings: &platform::Settings,
        email: &str,
        name: &str,
        token: &str,
    ) -> Self {
        let link = format!(
            "{}/reset-password?token={token}",
            settings.ingress.public_url()
        );
        let minutes = settings.auth.password_reset_ttl_secs / 60;
        Self {
            to_email: email.to_owned(),
            to_name: name.to_owned(),
            kind: "password_reset",
            subject: "Reset your password".into(),
            text: format!(
                "Hello {name},\n\nSomeone (we hope you) asked to reset the password of this \
                 account. Choose a new one here (valid for {minutes} minutes, once):\n\n{link}\n\n\
                 Setting a new password signs out every device. If you did not ask, ignore this \
                 email: your password stays as it is.\n"
            ),
        }
    }

    fn html(&self) -> String {
        // The text, escaped, with the link made clickable.
        let escaped = self
            .text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let body: Vec<String> = escaped
            .split("\n\n")
            .map(|p| {
                if p.starts_with("http://") || p.starts_with("https://") {
                    format!("<p><a href=\"{p}\">{p}</a></p>")
                } else {
                    format!("<p>{}</p>", p.replace('\n', "<br>"))
                }
            })
            .collect();
        format!(
            "<!doctype html><html><body style=\"font-family: sans-serif\">{}</body></html>",
            body.join("\n")
        )
    }
}

/// The SMTP client of account emails.
#[derive(Clone)]
pub struct AccountMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    attempts_max: usize,
    retry_initial: Duration,
    retry_max: Duration,
}

impl AccountMailer {
    pub fn from_settings(s: &NotifierSettings) -> anyhow::Result<Self> {
        let (transport, from) = platform::smtp::transport(s)?;
        Ok(Self {
            transport,
            from,
            attempts_max: s.send_attempts_max.max(1),
            retry_initial: Duration::from_millis(s.retry_initial_ms),
            retry_max: Duration::from_millis(s.retry_max_ms),
        })
    }

    /// Sends `mail` in the background, retrying transient failures.
    pub fn send_later(&self, mail: AccountMail) {
        let this = self.clone();
        tokio::spawn(async move { this.send(mail).await });
    }

    async fn send(&self, mail: AccountMail) {
        let msg = match self.message(&mail) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(kind = mail.kind, error = %e, "account email not built");
                return;
            }
        };
        let mut delay = self.retry_initial;
        for attempt in 1..=self.attempts_max {
            match self.transport.send(msg.clone()).await {
                Ok(_) => {
                    metrics::counter!("account_emails_sent_total", "kind" => mail.kind)
                        .increment(1);
                    return;
                }
                Err(e) if e.is_permanent() || attempt == self.attempts_max => {
                    tracing::warn!(kind = mail.kind, attempt, error = %e, "account email not sent");
                    metrics::counter!("account_emails_failed_total", "kind" => mail.kind)
                        .increment(1);
                    return;
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.retry_max);
                }
            }
        }
    }

    fn message(&self, mail: &AccountMail) -> anyhow::Result<Message> {
        let to = Mailbox::new(
            (!mail.to_name.is_empty()).then(|| mail.to_name.clone()),
            mail.to_email.parse()?,
        );
        Ok(Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html(),
            ))?)
    }
}
