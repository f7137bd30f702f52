//! `Workers::build(settings)` then `run_until_stopped()`.

use crate::runner::{Faults, RunnerCtx};
use crate::seatmaps::SeatMapWriter;
use platform::Settings;
use platform::amqp::ConfirmedPublisher;
use platform::commands::CommandBus;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Committed-event batches waiting for the publisher task.
const EVENT_QUEUE_MAX: usize = 256;

pub struct Workers {
    settings: Settings,
    faults: Arc<Faults>,
    owner: String,
    metrics: Option<tokio::net::TcpListener>,
    partitions: Vec<u16>,
}

impl Workers {
    /// Checks the stores answer (waiting with bounded backoff), declares the broker
    /// topology, and binds the metrics listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let faults = Arc::new(Faults::default());
        // Install the metrics recorder before anything records.
        let _ = platform::telemetry::prometheus();
        // The gateway client's TLS (reqwest built without a provider) uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pool = platform::db::pool(&settings.database)?;
        platform::db::wait_ready(&pool, Duration::from_secs(60)).await?;
        let topo = settings.topology();
        let conn = platform::amqp::connect_with_retry(
            &settings.amqp.url,
            "workers-setup",
            Duration::from_secs(60),
        )
        .await?;
        let ch = conn.create_channel().await?;
        platform::layout::declare_queues(&ch, &pool, &topo, settings.amqp.queue_shape()).await?;
        drop(conn.close(200, "setup done".into()).await);
        let partitions: Vec<u16> = if settings.workers.partitions.is_empty() {
            topo.all_partitions().collect()
        } else {
            settings.workers.partitions.clone()
        };
        if let Some(bad) = partitions.iter().find(|p| **p >= topo.partitions) {
            anyhow::bail!(
                "partition {bad} does not exist (there are {})",
                topo.partitions
            );
        }
        let metrics = platform::probe::bind(
            &settings.workers.metrics_listen,
            "APP__WORKERS__METRICS_LISTEN",
        )
        .await;
        let owner = format!(
            "{}-{}-{}",
            hostname(),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Ok(Self {
            settings,
            faults,
            owner,
            metrics,
            partitions,
        })
    }

    /// The address `/metrics` is served on, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// This process's owner name (as written to `partitions.owner`).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs every partition runner, the event publisher, the outbox relay and the
    /// hold-expiry sweep until `shutdown` resolves; then lets each runner finish its
    /// current batch (bounded by `shutdown_grace_secs`).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let s = &self.settings;
        let pool = platform::db::pool(&s.database)?;
        let topo = s.topology();
        let stop = CancellationToken::new();
        let publisher = ConfirmedPublisher::new(
            &s.amqp.url,
            &format!("{}-events", self.owner),
            2,
            Duration::from_millis(s.amqp.publish_confirm_timeout_ms),
        );
        let (tx, rx) = tokio::sync::mpsc::channel(EVENT_QUEUE_MAX);
        let ctx = Arc::new(RunnerCtx {
            pool: pool.clone(),
            topology: topo.clone(),
            amqp_url: s.amqp.url.clone(),
            settings: s.workers.clone(),
            owner: self.owner.clone(),
            events: tx,
            faults: self.faults.clone(),
            seatmaps: SeatMapWriter::new(
                platform::cache::connect_lazy(&s.redis).await?,
                platform::cache::Keys::new(s.redis.key_prefix.clone()),
                s.redis.seatmap_ttl_secs,
            ),
            dead_letters: publisher.clone(),
        });
        let grace = Duration::from_secs(s.workers.shutdown_grace_secs);
        let runners = tokio::spawn(crate::layouts::supervise(
            ctx,
            self.partitions.clone(),
            grace,
            stop.clone(),
        ));
        let mut background = JoinSet::new();
        let publisher_task = tokio::spawn(crate::events::run_publisher(
            pool.clone(),
            publisher.clone(),
            rx,
        ));
        background.spawn(crate::events::run_relay(
            pool.clone(),
            publisher.clone(),
            Duration::from_millis(s.workers.outbox_relay_ms),
            Duration::from_millis(s.workers.outbox_grace_ms),
            stop.clone(),
        ));
        background.spawn(crate::retention::run(
            pool.clone(),
            s.workers.retention_days,
            Duration::from_secs(s.workers.retention_sweep_secs),
            stop.clone(),
        ));
        let commands = CommandBus::new(
            publisher.clone(),
            topo.clone(),
            platform::layout::LayoutWatch::spawn(&pool, topo.clone()),
        );
        background.spawn(crate::expiry::run(
            pool.clone(),
            commands.clone(),
            self.partitions.clone(),
            Duration::from_millis(s.workers.expiry_sweep_ms),
            stop.clone(),
        ));
        // The payment saga: its consumers and the sweep of pending payments whose
        // hold ran out.
        let gateway = payment_adapter::HttpGateway::new(
            &s.payments.gateway_url,
            secrecy::ExposeSecret::expose_secret(&s.payments.gateway_api_key),
            Duration::from_millis(s.payments.gateway_timeout_ms),
            s.payments.gateway_max_attempts,
        );
        let saga = Arc::new(crate::saga::Saga {
            pool: pool.clone(),
            gateway,
            commands,
            faults: self.faults.clone(),
        });
        for which in [
            crate::saga::SagaQueue::Events,
            crate::saga::SagaQueue::Webhooks,
        ] {
            background.spawn(platform::amqp::consume(
                s.amqp.url.clone(),
                crate::saga::consumer_config(s, which),
                publisher.clone(),
                Arc::new(crate::saga::SagaConsumer {
                    saga: saga.clone(),
                    which,
                }),
                stop.clone(),
            ));
        }
        background.spawn(crate::saga::poll::run(
            saga.clone(),
            self.partitions.clone(),
            crate::saga::poll::PollSettings {
                every: Duration::from_millis(s.workers.expiry_sweep_ms),
                first: Duration::from_millis(s.payments.poll_first_ms),
                max_interval: Duration::from_millis(s.payments.poll_max_interval_ms),
            },
            stop.clone(),
        ));
        background.spawn(crate::saga::run_pending_sweep(
            saga,
            self.partitions.clone(),
            Duration::from_secs(s.payments.pending_grace_secs),
            Duration::from_millis(s.workers.expiry_sweep_ms),
            stop.clone(),
        ));
        // The notifier: one email per booking event it is bound to.
        if s.notifier.enabled {
            let n =
                notifier::Notifier::from_settings(s, pool.clone(), self.faults.notifier.clone())?;
            background.spawn(platform::amqp::consume(
                s.amqp.url.clone(),
                notifier::consumer_config(s),
                publisher.clone(),
                Arc::new(n),
                stop.clone(),
            ));
            // Reminders before a show: events for the notifier, through the outbox.
            if s.notifier.reminder_before_secs > 0 {
                background.spawn(crate::reminders::run(
                    pool.clone(),
                    publisher.clone(),
                    topo.events_exchange(),
                    Duration::from_secs(s.notifier.reminder_before_secs),
                    Duration::from_millis(s.notifier.reminder_sweep_ms.max(1)),
                    stop.clone(),
                ));
            }
        }
        background.spawn(watch_queue_depths(
            s.amqp.url.clone(),
            pool.clone(),
            topo.clone(),
            self.partitions.clone(),
            stop.clone(),
        ));
        if let Some(listener) = self.metrics {
            // `/healthz` answers while the process runs: the liveness probe of the
            // Kubernetes manifests (readiness has no meaning for a consumer).
            // With `fault_injection` (tests only), `/faults` arms injected failures.
            let faults = crate::faults::routes(s.workers.fault_injection, self.faults.clone());
            background.spawn(platform::probe::serve_with(listener, faults, stop.clone()));
        }
        tracing::info!(owner = %self.owner, partitions = ?self.partitions, "workers running");
        shutdown.await;
        tracing::info!("workers stopping");
        stop.cancel();
        // The supervisor gives its runners the grace period, then aborts them.
        drop(runners.await);
        // Runners are gone, so the event channel closes and the publisher drains.
        drop(tokio::time::timeout(grace, publisher_task).await);
        background.abort_all();
        Ok(())
    }
}

/// How often queue depths are read.
const QUEUE_DEPTH_EVERY: Duration = Duration::from_secs(5);

/// Every few seconds, the depth and consumer count of this process's partition
/// queues (in the current layout) and of the dead-letter queues, as gauges.
async fn watch_queue_depths(
    url: String,
    pool: sqlx::PgPool,
    topo: contracts::Topology,
    partitions: Vec<u16>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            res = sample_queue_depths(&url, &pool, &topo, &partitions) => {
                let Err(e) = res;
                tracing::debug!(error = %e, "queue depth watch failed; retrying");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(QUEUE_DEPTH_EVERY) => {}
        }
    }
}

/// Samples the queue depths on one connection until it fails.
async fn sample_queue_depths(
    url: &str,
    pool: &sqlx::PgPool,
    root: &contracts::Topology,
    roots: &[u16],
) -> anyhow::Result<std::convert::Infallible> {
    let conn = platform::amqp::connect(url, "workers-metrics").await?;
    let ch = conn.create_channel().await?;
    let topo = root;
    loop {
        let gens = platform::layout::generations(pool, root.partitions).await?;
        let layout = platform::layout::current(&gens)
            .ok_or_else(|| anyhow::anyhow!("no current partition layout"))?;
        let now = root.at_layout(layout.generation, layout.partitions);
        for p in now
            .all_partitions()
            .filter(|p| roots.contains(&(p % root.partitions)))
        {
            let (depth, consumers) =
                platform::amqp::queue_counts(&ch, &now.partition_queue(p)).await?;
            metrics::gauge!("partition_queue_depth", "partition" => now.partition_label(p))
                .set(f64::from(depth));
            metrics::gauge!("partition_consumers", "partition" => now.partition_label(p))
                .set(f64::from(consumers));
        }
        for q in topo.dead_letter_queues() {
            let (depth, _) = platform::amqp::queue_counts(&ch, &q).await?;
            metrics::gauge!("dead_letter_queue_depth", "queue" => q).set(f64::from(depth));
        }
        tokio::time::sleep(QUEUE_DEPTH_EVERY).await;
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}
