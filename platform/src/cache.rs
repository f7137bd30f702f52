//! Redis: what may be lost and rebuilt (the "queued" markers, the rate limits' cells,
//! later seat maps). Every key carries the deployment's (or test's) prefix.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// A connection manager that reconnects by itself.
pub async fn connect(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(3);
    ConnectionManager::new_with_config(client, cfg).await
}

/// Key naming.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The "queued" marker of a booking the sequencer has not decided yet.
    pub fn queued(&self, booking: contracts::BookingId) -> String {
        format!("{}booking:queued:{booking}", self.prefix)
    }

    /// The rate-limit cell of one caller (`user:<id>` or `ip:<addr>`) in one route class.
    pub fn rate_limit(&self, class: &str, subject: &str) -> String {
        format!("{}ratelimit:{class}:{subject}", self.prefix)
    }
}
