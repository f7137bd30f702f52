//! Sending an SMS through the provider of `notifier.sms_*` (Twilio's Messages API
//! shape: `POST {url}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`,
//! `From`, `Body`, HTTP basic auth with the account sid and auth token; `201` with
//! the message resource). Booking SMS from the notifier and phone-verification codes
//! from ingress both send here. Locally the provider is the bundled `sms-sink`.

use crate::settings::NotifierSettings;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// Why a send did not go out.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// Worth trying again: no answer, a timeout, `429` or a `5xx`.
    #[error("{0}")]
    Transient(String),
    /// Trying again changes nothing: any other refusal (a bad number, credentials).
    #[error("{0}")]
    Permanent(String),
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(char::from(b));
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Clone)]
pub struct SmsClient {
    http: reqwest::Client,
    messages_url: String,
    account_sid: String,
    auth_token: SecretString,
    from: String,
}

impl std::fmt::Debug for SmsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsClient")
            .field("messages_url", &self.messages_url)
            .finish_non_exhaustive()
    }
}

impl SmsClient {
    /// The client of `s`, or `None` when no provider is configured (`sms_url` empty).
    pub fn from_settings(s: &NotifierSettings) -> anyhow::Result<Option<Self>> {
        if s.sms_url.is_empty() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(s.sms_timeout_ms))
            .build()?;
        Ok(Some(Self {
            http,
            messages_url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                s.sms_url.trim_end_matches('/'),
                s.sms_account_sid
            ),
            account_sid: s.sms_account_sid.clone(),
            auth_token: s.sms_auth_token.clone(),
            from: s.sms_from.clone(),
        }))
    }

    /// Sends `body` to `to` (E.164); answers the provider's message sid.
    pub async fn send(&self, to: &str, body: &str) -> Result<String, SmsError> {
        let res = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("To", to), ("From", &self.from), ("Body", body)]))
            .send()
            .await
            .map_err(|e| SmsError::Transient(format!("sms provider: {e}")))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if status.is_success() {
            let sid = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("sid")?.as_str().map(str::to_owned))
                .unwrap_or_default();
            return Ok(sid);
        }
        let short: String = text.chars().take(200).collect();
        let msg = format!("sms provider answered {status}: {short}");
        if status.is_server_error() || status.as_u16() == 429 {
            Err(SmsError::Transient(msg))
        } else {
            Err(SmsError::Permanent(msg))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_are_url_encoded() {
        assert_eq!(
            super::form(&[("To", "+919812345678"), ("Body", "Seats A1, A2. ok?")]),
            "To=%2B919812345678&Body=Seats+A1%2C+A2.+ok%3F"
        );
    }
}
