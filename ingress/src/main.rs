//! The ingress binary: settings in, HTTP API up until SIGTERM or Ctrl-C.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = platform::Settings::load()?;
    let _telemetry = platform::telemetry::init(&settings.telemetry, "ingress");
    let app = ingress::Application::build(settings).await?;
    if let Some(addr) = app.metrics_addr() {
        println!("ingress metrics on http://{addr}/metrics");
    }
    // The last line at startup (the end-to-end harness reads these lines).
    println!("ingress listening on {}://{}", app.scheme(), app.addr());
    app.run_until_stopped(platform::shutdown::signal()).await?;
    Ok(())
}
