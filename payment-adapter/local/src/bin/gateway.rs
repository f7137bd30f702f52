//! The local payment gateway as a process: `gateway --help`.

use clap::Parser;
use local_gateway::{LocalGateway, LocalGatewayConfig};
use tracing_subscriber::EnvFilter;

/// A local stand-in for a card payment provider: Stripe-shaped API, signed webhooks.
#[derive(Debug, Parser)]
#[command(name = "gateway", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8090")]
    listen: String,
    /// Bearer token clients must send.
    #[arg(
        long,
        env = "GATEWAY_API_KEY",
        default_value = "sk_test_local",
        hide_env_values = true
    )]
    api_key: String,
    /// Where webhooks are POSTed; an empty value sends none.
    #[arg(
        long,
        env = "GATEWAY_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8080/v1/payments/webhook"
    )]
    webhook_url: String,
    /// HMAC secret of the Gateway-Signature header.
    #[arg(
        long,
        env = "GATEWAY_WEBHOOK_SECRET",
        default_value = "whsec_local_development",
        hide_env_values = true
    )]
    webhook_secret: String,
    /// Delay before an ordinary payment or refund settles.
    #[arg(long, env = "GATEWAY_OK_DELAY_MS", default_value_t = 20)]
    ok_delay_ms: u64,
    /// Delay before a pm_card_slow payment settles.
    #[arg(long, env = "GATEWAY_SLOW_DELAY_MS", default_value_t = 3000)]
    slow_delay_ms: u64,
    /// How long the first pm_card_timeout request of a key hangs.
    #[arg(long, env = "GATEWAY_HANG_MS", default_value_t = 5000)]
    hang_ms: u64,
    /// Attempts per webhook delivery.
    #[arg(long, env = "GATEWAY_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    webhook_max_attempts: u32,
    /// Probability (0..1) that an event is delivered twice.
    #[arg(long, env = "GATEWAY_DUPLICATE_WEBHOOKS", default_value_t = 0.0, value_parser = probability)]
    duplicate_webhooks: f64,
    /// Random extra delay 0..N ms per webhook, so they arrive out of order.
    #[arg(long, env = "GATEWAY_REORDER_WEBHOOKS_MS", default_value_t = 0)]
    reorder_webhooks_ms: u64,
    /// Seed of the RNG behind duplicates and reordering.
    #[arg(long, env = "GATEWAY_SEED")]
    seed: Option<u64>,
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability in 0..=1"))
    }
}

impl From<Args> for LocalGatewayConfig {
    fn from(a: Args) -> Self {
        Self {
            listen: a.listen,
            api_key: a.api_key,
            webhook_url: Some(a.webhook_url).filter(|u| !u.is_empty()),
            webhook_secret: a.webhook_secret,
            ok_delay_ms: a.ok_delay_ms,
            slow_delay_ms: a.slow_delay_ms,
            hang_ms: a.hang_ms,
            webhook_max_attempts: a.webhook_max_attempts,
            duplicate_webhooks: a.duplicate_webhooks,
            reorder_webhooks_ms: a.reorder_webhooks_ms,
            seed: a.seed,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cfg = LocalGatewayConfig::from(Args::parse());
    tracing::info!(config = ?cfg, "starting local gateway");
    let gateway = LocalGateway::build(cfg).await?;
    println!("gateway listening on http://{}", gateway.addr());
    gateway.run_until_stopped(shutdown_signal()).await;
    Ok(())
}
