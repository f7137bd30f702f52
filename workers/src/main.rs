//! The workers binary, until SIGTERM or Ctrl-C: the sequencer runners of its
//! partitions, the event publisher and outbox relay, the hold-expiry and retention
//! sweeps, the payment saga (its two consumers and the sweep of pending payments) and
//! the notifier.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = platform::Settings::load()?;
    let _telemetry = platform::telemetry::init(&settings.telemetry, "workers");
    let workers = workers::Workers::build(settings).await?;
    if let Some(addr) = workers.metrics_addr() {
        println!("workers metrics on http://{addr}/metrics");
    }
    // The last line at startup (the end-to-end harness reads these lines).
    println!("workers running as {}", workers.owner());
    workers
        .run_until_stopped(platform::shutdown::signal())
        .await
}
