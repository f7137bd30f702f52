//! The one consumer runtime: every queue consumer (the payment saga, the notifier,
//! any later one) is a [`Handler`] run by [`consume()`], which owns the connection,
//! the prefetch, the concurrency and the one settle policy:
//!
//! | the handler returns | the delivery is |
//! |---|---|
//! | `Ok(())` | acked |
//! | [`Failure::Retry`] | requeued (nack) after a backoff that grows with the broker's delivery count; the queue's `x-delivery-limit` bounds the tries, past it the broker dead-letters it |
//! | [`Failure::NotBefore`] | as `Retry`, but requeued no sooner than the time it names (another consumer holds the work until then), so the tries are not spent while waiting |
//! | [`Failure::Abort`] | copied to the dead-letter exchange with the reason, source queue and AMQP type ([`dead_letter()`]), then [`Handler::on_abort`] runs, then acked; requeued if the dead-letter publish failed |
//!
//! The sequencer runner does not run on this: it takes deliveries in batches and
//! acks a batch at once after one database commit (see `workers/src/runner.rs`).

use super::dead_letter::{DeadLetterTo, Parcel, dead_letter};
use super::headers::delivery_count;
use super::publish::{ConfirmedPublisher, PublishError};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a consumer waits before reconnecting after its connection ended.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Longest wait for a channel, its prefetch and its consumer on a new connection.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a delivery was not handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Try again later (a dependency is down or busy).
    #[error("retry: {0}")]
    Retry(String),
    /// Try again, but not before this long: the work is someone else's until then
    /// (e.g. a claim's lease held by a consumer that may have died). Waiting it out
    /// spends one delivery, where retrying on the backoff would spend the queue's
    /// whole delivery limit and dead-letter work that only had to wait.
    #[error("retry in {0:?}: {1}")]
    NotBefore(Duration, String),
    /// Never going to work: dead-letter with this reason.
    #[error("abort: {0}")]
    Abort(String),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Retry(format!("postgres: {e}"))
    }
}

impl From<PublishError> for Failure {
    fn from(e: PublishError) -> Self {
        Failure::Retry(format!("rabbitmq: {e}"))
    }
}

/// One consumer's own steps: decode a delivery and handle it.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, d: &Delivery) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Runs after an aborted delivery went to the dead-letter queue, before the ack
    /// (e.g. to record the permanent failure).
    fn on_abort(&self, _d: &Delivery, _reason: &str) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Runs before a failed delivery is requeued (e.g. to count retries).
    fn on_retry(&self, _d: &Delivery, _reason: &str) {}
}

/// The requeue delay: `initial` doubled per earlier delivery, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before requeueing a delivery the broker delivered `attempt` times before.
    pub fn after(&self, attempt: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max)
    }
}

/// What [`consume()`] consumes and how.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Names the connection (`{name}-{queue}`), the consumer tags and the logs.
    pub name: String,
    pub queue: String,
    /// Unacked deliveries the broker may hand this consumer.
    pub prefetch: u16,
    /// Deliveries handled at once (at most `prefetch` are ever unacked).
    pub concurrency: usize,
    pub requeue_backoff: Backoff,
    pub dead_letter: DeadLetterTo,
}

/// Consumes `cfg.queue` with `handler` until `stop`, reconnecting after failures.
/// Deliveries in progress when `stop` fires are finished and settled.
pub async fn consume<H: Handler>(
    amqp_url: String,
    cfg: ConsumerConfig,
    publisher: ConfirmedPublisher,
    handler: Arc<H>,
    stop: CancellationToken,
) {
    loop {
        let res = session(&amqp_url, &cfg, &publisher, &*handler, &stop).await;
        if stop.is_cancelled() {
            return;
        }
        if let Err(e) = res {
            tracing::warn!(consumer = %cfg.name, queue = %cfg.queue, error = %e, "consumer ended; reconnecting");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RECONNECT_DELAY) => {}
        }
    }
}

async fn session<H: Handler>(
    amqp_url: &str,
    cfg: &ConsumerConfig,
    publisher: &ConfirmedPublisher,
    handler: &H,
    stop: &CancellationToken,
) -> Result<(), lapin::Error> {
    let conn = super::connect(amqp_url, &format!("{}-{}", cfg.name, cfg.queue)).await?;
    // Each step bounded: on a cluster that lost the queue's leader, `basic.consume`
    // waits for the election inside the broker, and a reply that never comes
    // would keep this consumer off its queue for good instead of trying again.
    let setup = async {
        let ch = conn.create_channel().await?;
        ch.basic_qos(cfg.prefetch, BasicQosOptions::default())
            .await?;
        let consumer = ch
            .basic_consume(
                cfg.queue.as_str().into(),
                format!("{}-{}", cfg.name, uuid::Uuid::new_v4().simple()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok::<_, lapin::Error>(consumer)
    };
    let consumer = match tokio::time::timeout(SETUP_TIMEOUT, setup).await {
        Ok(res) => res?,
        Err(_) => {
            drop(conn.close(200, "consumer setup timed out".into()).await);
            return Err(lapin::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no consumer on the queue within {SETUP_TIMEOUT:?}"),
            )));
        }
    };
    consumer
        .take_until(stop.cancelled())
        .for_each_concurrent(cfg.concurrency.max(1), |d| async move {
            if let Ok(d) = d {
                settle(cfg, publisher, handler, d, stop).await;
            }
        })
        .await;
    drop(conn.close(200, "consumer stopping".into()).await);
    Ok(())
}

/// Handles one delivery and acks, requeues or dead-letters it.
async fn settle<H: Handler>(
    cfg: &ConsumerConfig,
    publisher: &ConfirmedPublisher,
    handler: &H,
    d: Delivery,
    stop: &CancellationToken,
) {
    let requeue = BasicNackOptions {
        requeue: true,
        multiple: false,
    };
    match handler.handle(&d).await {
        Ok(()) => drop(d.ack(BasicAckOptions::default()).await),
        Err(Failure::Abort(reason)) => {
            match dead_letter(publisher, &cfg.dead_letter, Parcel::of(&d), &reason).await {
                Ok(()) => {
                    handler.on_abort(&d, &reason).await;
                    drop(d.ack(BasicAckOptions::default()).await);
                }
                Err(e) => {
                    tracing::warn!(consumer = %cfg.name, error = %e, reason, "dead-lettering failed; requeueing");
                    drop(d.nack(requeue).await);
                }
            }
        }
        Err(Failure::Retry(reason)) => {
            let wait = cfg.requeue_backoff.after(delivery_count(&d));
            handler.on_retry(&d, &reason);
            requeue_later(cfg, d, wait, &reason, stop);
        }
        Err(Failure::NotBefore(at_least, reason)) => {
            let wait = cfg.requeue_backoff.after(delivery_count(&d)).max(at_least);
            handler.on_retry(&d, &reason);
            requeue_later(cfg, d, wait, &reason, stop);
        }
    }
}

/// Requeues `d` after `wait` (at once when the consumer stops). The wait runs on
/// its own task, so a delivery waiting out a long lease does not take one of the
/// consumer's `concurrency` slots from the deliveries behind it (it still counts
/// against the prefetch). If the connection closes first, the broker requeues it.
fn requeue_later(
    cfg: &ConsumerConfig,
    d: Delivery,
    wait: Duration,
    reason: &str,
    stop: &CancellationToken,
) {
    let attempt = delivery_count(&d);
    tracing::warn!(consumer = %cfg.name, error = %reason, attempt, retry_in = ?wait, "handling failed; requeueing");
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(wait) => {}
        }
        let requeue = BasicNackOptions {
            requeue: true,
            multiple: false,
        };
        drop(d.nack(requeue).await);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requeue_delay_doubles_per_delivery_up_to_its_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(6400),
        };
        assert_eq!(b.after(0), Duration::from_millis(100));
        assert_eq!(b.after(1), Duration::from_millis(200));
        assert_eq!(b.after(6), Duration::from_millis(6400));
        assert_eq!(b.after(7), Duration::from_millis(6400));
        assert_eq!(b.after(u32::MAX), Duration::from_millis(6400));
    }
}
