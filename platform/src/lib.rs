//! The one place that knows how to reach the outside world.
//!
//! - [`settings`]: typed, layered configuration (defaults file, `APP_CONFIG`, env).
//! - [`db`]: the PostgreSQL pool, database creation and migrations.
//! - [`amqp`]: RabbitMQ connections, the topology (quorum partition queues with
//!   single active consumer, delivery limit and at-least-once dead-lettering), a
//!   confirmed publisher, the one consumer runtime (a [`amqp::Handler`] returns
//!   `Retry` or `Abort`; one settle policy) and the one dead-letter function.
//! - [`commands`]: [`commands::CommandBus`], sending a command into its show's
//!   partition (and a pay request to the saga).
//! - [`catalog`]: the show and layout reads more than one process needs.
//! - [`cache`]: Redis connection manager and key naming.
//! - [`seatmap`]: the versioned live seat map in Redis (compare-and-set writes) and
//!   its rebuild from PostgreSQL.
//! - [`localtime`]: theaters' IANA time zones and show times on their clocks.
//! - [`smtp`]: the SMTP transport and sender of every e-mail.
//! - [`probe`]: the metrics listener (`/metrics`, `/healthz`) on its own address.
//! - [`telemetry`]: JSON logs, optional OTLP span export and the Prometheus recorder.
//! - [`trace`]: the W3C trace context on spans and AMQP headers.
//! - [`shutdown`]: the Ctrl-C / SIGTERM signal; [`every`]: a period that ticks until
//!   stopped.
//!
//! Business code receives these as values and never reads environment variables.

pub mod amqp;
pub mod cache;
pub mod catalog;
pub mod commands;
pub mod db;
pub mod layout;
pub mod localtime;
pub mod probe;
pub mod seatmap;
pub mod settings;
pub mod shutdown;
pub mod sms;
pub mod smtp;
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

/// `t` as [`contracts::Millis`] (sub-millisecond digits dropped), for comparing a
/// stored time with one carried in a message.
pub fn millis_of(t: time::OffsetDateTime) -> contracts::Millis {
    contracts::Millis(
        i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX),
    )
}

/// A period that ticks until `stop` is cancelled: the shape of every "each N, until
/// stopped" loop.
///
/// ```ignore
/// let mut every = platform::every(period, &stop);
/// while every.tick().await {
///     sweep_once(&pool, &mut seen).await;
/// }
/// ```
///
/// A ticker rather than a closure, so the loop body may borrow its state mutably.
pub fn every(period: std::time::Duration, stop: &tokio_util::sync::CancellationToken) -> Every<'_> {
    Every { period, stop }
}

/// See [`every`].
pub struct Every<'a> {
    period: std::time::Duration,
    stop: &'a tokio_util::sync::CancellationToken,
}

impl Every<'_> {
    /// Waits one period: `true` to run the step, `false` once stopped (a step in
    /// progress when `stop` is cancelled is finished first).
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = tokio::time::sleep(self.period) => true,
        }
    }
}
