//! The test's money as the gateway sees it: its client, webhooks signed as the
//! gateway signs them, and reconciliation against it.

use crate::TestSystem;
use std::time::Duration;

impl TestSystem {
    /// A client of the test's local gateway (the workers' settings).
    pub fn gateway(&self) -> payment_adapter::HttpGateway {
        payment_adapter::HttpGateway::new(
            &self.gateway_url,
            secrecy::ExposeSecret::expose_secret(&self.settings.payments.gateway_api_key),
            Duration::from_secs(2),
            2,
        )
    }

    /// Reconciliation of the database and the gateway (as `bookctl reconcile`).
    pub async fn reconcile(&self) -> ops::reconcile::Report {
        ops::reconcile::with_gateway(&self.pool, &self.gateway())
            .await
            .expect("reconcile")
    }

    /// POSTs `event` to the webhook route signed with the webhook secret, as the
    /// gateway (or someone who holds the secret) would; the status and the JSON
    /// answer.
    pub async fn signed_webhook(&self, event: &serde_json::Value) -> (u16, serde_json::Value) {
        let body = event.to_string();
        let now = platform::now_millis().0 / 1000;
        let secret = secrecy::ExposeSecret::expose_secret(&self.settings.payments.webhook_secret);
        let res = self
            .http
            .post(self.url("/v1/payments/webhook"))
            .header(
                payment_adapter::SIGNATURE_HEADER,
                payment_adapter::signature::sign(secret.as_bytes(), now, body.as_bytes()),
            )
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("webhook");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }
}
