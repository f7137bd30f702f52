//! The one place that knows how to reach the outside world.
//!
//! - [`settings`]: typed, layered configuration (defaults file, `APP_CONFIG`, env).
//! - [`db`]: the PostgreSQL pool, database creation and migrations.
//! - [`amqp`]: RabbitMQ connections, the topology (quorum partition queues with
//!   single active consumer, delivery limit and at-least-once dead-lettering), and a
//!   confirmed publisher.
//! - [`cache`]: Redis connection manager and key naming.
//! - [`seatmap`]: the versioned live seat map in Redis (compare-and-set writes) and
//!   its rebuild from PostgreSQL.
//! - [`telemetry`]: JSON logs and the Prometheus recorder.
//!
//! Business code receives these as values and never reads environment variables.

pub mod amqp;
pub mod cache;
pub mod catalog;
pub mod db;
pub mod seatmap;
pub mod settings;
pub mod telemetry;
pub mod trace;

pub use settings::Settings;

/// The backoff of waiting for a dependency at startup: 100 ms doubling to 2 s
/// between tries, for at most `max_wait` in all.
pub fn startup_backoff(max_wait: std::time::Duration) -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(100))
        .with_max_delay(std::time::Duration::from_secs(2))
        .with_total_delay(Some(max_wait))
        .without_max_times()
}

/// Current time as [`contracts::Millis`]. Only the edges (ingress, sweeps) read the
/// clock; the sequencer gets time inside commands.
pub fn now_millis() -> contracts::Millis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    contracts::Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
