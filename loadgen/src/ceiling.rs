//! The `ceiling` scenario: the bare limits of this box, measured by the same loadgen
//! in the same run as the scenarios, so that each scenario's figure can be read as a
//! share of what the box can do at all.
//!
//! - **HTTP**: `GET /healthz` on ingress (its own listener, server loop and middleware
//!   stack, no store touched) at the scenario's concurrency over the warmed-up
//!   keep-alive connections: the most requests per second ingress's stack answers.
//! - **Broker**: persistent messages the size of a `HoldSeats` command published
//!   with confirms by `platform`'s `ConfirmedPublisher` (as many channels as
//!   ingress, as many in flight as the scenario) into one quorum queue declared as a
//!   partition queue is, while one consumer takes them with the runner's prefetch and
//!   acks each batch (at most `batch_size_max`) at once, as the runner does: the
//!   most commands per second one partition can carry, with nothing else to do.

use futures::StreamExt;
use hdrhistogram::Histogram;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use platform::amqp::{ConfirmedPublisher, json_properties};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Channels of the measured publisher: ingress's `PUBLISH_CHANNELS`.
const PUBLISH_CHANNELS: usize = 4;

/// What one ceiling measured.
pub struct Ceiling {
    pub done: usize,
    pub failed: usize,
    pub elapsed: Duration,
    /// Latency of each request (HTTP) or publish until its confirm (broker), µs.
    pub latency_us: Histogram<u64>,
}

impl Ceiling {
    pub fn per_sec(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `n` `GET {base}/healthz` with at most `c` in flight.
pub async fn http(client: &reqwest::Client, base: &str, n: usize, c: usize) -> Ceiling {
    let url: Arc<str> = format!("{base}/healthz").into();
    let sem = Arc::new(Semaphore::new(c.max(1)));
    let mut set = JoinSet::new();
    let t0 = Instant::now();
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("never closed");
        let (client, url) = (client.clone(), url.clone());
        set.spawn(async move {
            let sent = Instant::now();
            let ok = match client.get(&*url).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            drop(permit);
            (ok, sent.elapsed())
        });
    }
    let mut out = Ceiling {
        done: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latency_us: histogram(),
    };
    while let Some(r) = set.join_next().await {
        match r {
            Ok((true, took)) => {
                out.done += 1;
                out.latency_us.saturating_record(micros(took));
            }
            _ => out.failed += 1,
        }
    }
    out.elapsed = t0.elapsed();
    out
}

/// A `HoldSeats` command as ingress publishes it (its bytes are what the broker
/// stores and delivers).
fn command_bytes() -> Vec<u8> {
    use contracts::{
        BookingId, Command, CommandEnvelope, HoldSeats, MessageId, SeatId, SeatRequest, ShowId,
        UserId,
    };
    let booking_id = BookingId(uuid::Uuid::now_v7());
    let env = CommandEnvelope::new(
        MessageId::for_booking(booking_id, "hold"),
        ShowId(uuid::Uuid::now_v7()),
        platform::now_millis(),
        Command::HoldSeats(HoldSeats {
            booking_id,
            user_id: UserId(uuid::Uuid::now_v7()),
            request: SeatRequest::Chosen {
                seats: vec![SeatId::new("K", 7).expect("a valid seat id")],
            },
            hold_ttl_ms: 600_000,
            payment_method: Some("pm_card_ok".into()),
        }),
    );
    serde_json::to_vec(&env).expect("a command serialises")
}

/// Where the broker ceiling runs.
pub struct BrokerTarget<'a> {
    pub url: &'a str,
    pub queue: String,
    pub queue_args: FieldTable,
    pub prefetch: u16,
    pub batch_max: usize,
}

/// `n` messages published with confirms (at most `c` awaiting theirs) into one
/// quorum queue while one consumer drains it in acked batches; `elapsed` runs from
/// the first publish to the last delivery acked. The queue is deleted afterwards.
pub async fn broker(t: BrokerTarget<'_>, n: usize, c: usize) -> anyhow::Result<Ceiling> {
    let conn = platform::amqp::connect(t.url, "loadgen-ceiling").await?;
    let ch = conn.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_delete(t.queue.clone().into(), QueueDeleteOptions::default())
        .await?;
    ch.queue_declare(t.queue.clone().into(), durable, t.queue_args.clone())
        .await?;
    ch.basic_qos(t.prefetch, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(
            t.queue.clone().into(),
            "loadgen-ceiling".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let publisher = ConfirmedPublisher::new(
        t.url,
        "loadgen-ceiling",
        PUBLISH_CHANNELS,
        Duration::from_secs(30),
    );
    // Connect before the clock starts.
    anyhow::ensure!(
        publisher.is_connected().await,
        "cannot connect the publisher"
    );
    let body: Arc<[u8]> = command_bytes().into();
    let batch_max = t.batch_max.max(1);
    let t0 = Instant::now();
    let consume = async {
        let mut got = 0usize;
        while got < n {
            let Some(first) = consumer.next().await else {
                anyhow::bail!("the consumer stream ended");
            };
            let mut last = first?.delivery_tag;
            let mut batch = 1;
            while batch < batch_max {
                match futures::FutureExt::now_or_never(consumer.next()) {
                    Some(Some(d)) => {
                        last = d?.delivery_tag;
                        batch += 1;
                    }
                    Some(None) | None => break,
                }
            }
            ch.basic_ack(last, BasicAckOptions { multiple: true })
                .await?;
            got += batch;
        }
        Ok(t0.elapsed())
    };
    let publish = async {
        let sem = Arc::new(Semaphore::new(c.max(1)));
        let mut set = JoinSet::new();
        for i in 0..n {
            let permit = sem.clone().acquire_owned().await.expect("never closed");
            let (publisher, body, queue) = (publisher.clone(), body.clone(), t.queue.clone());
            set.spawn(async move {
                let sent = Instant::now();
                let props = json_properties(&format!("ceiling-{i}"), FieldTable::default());
                let ok = publisher.publish("", &queue, &body, props).await.is_ok();
                drop(permit);
                (ok, sent.elapsed())
            });
        }
        let mut out = Ceiling {
            done: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            latency_us: histogram(),
        };
        while let Some(r) = set.join_next().await {
            match r {
                Ok((true, took)) => {
                    out.done += 1;
                    out.latency_us.saturating_record(micros(took));
                }
                _ => out.failed += 1,
            }
        }
        out
    };
    let (published, consumed) = tokio::join!(publish, async {
        tokio::time::timeout(Duration::from_secs(600), consume).await
    });
    let mut out = published;
    out.elapsed = consumed
        .map_err(|_| anyhow::anyhow!("the consumer did not get every message in 600 s"))??;
    drop(
        ch.queue_delete(t.queue.into(), QueueDeleteOptions::default())
            .await,
    );
    drop(conn.close(200, "ceiling done".into()).await);
    Ok(out)
}
