//! Redis: what may be lost and rebuilt (the "queued" markers, the rate limits' cells,
//! later seat maps). Every key carries the deployment's (or test's) prefix.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// A connection manager that connects on first use and reconnects by itself, for
/// processes whose Redis use is best effort and must not wait for Redis to start.
pub fn connect_lazy(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    ConnectionManager::new_lazy_with_config(redis::Client::open(url)?, config())
}

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(3)
}

/// A connection manager that reconnects by itself.
pub async fn connect(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    ConnectionManager::new_with_config(client, config()).await
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

    /// A started provider sign-in, by the SHA-256 of its `state` (hex).
    pub fn oidc_state(&self, state_hash: &str) -> String {
        format!("{}oidc:state:{state_hash}", self.prefix)
    }

    /// The live seat map of a show (see [`crate::seatmap`]).
    pub fn seatmap(&self, show: contracts::ShowId) -> String {
        format!("{}seatmap:{show}", self.prefix)
    }
}
