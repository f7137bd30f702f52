//! The workers binary: sequencer runners, event publisher, outbox relay and hold
//! expiry, until SIGTERM or Ctrl-C.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = platform::Settings::load()?;
    let _telemetry = platform::telemetry::init(&settings.telemetry, "workers");
    let workers = workers::Workers::build(settings).await?;
    if let Some(addr) = workers.metrics_addr() {
        println!("workers metrics on http://{addr}/metrics");
    }
    workers.run_until_stopped(shutdown_signal()).await
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
