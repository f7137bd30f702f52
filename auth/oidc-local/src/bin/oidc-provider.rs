//! The local OpenID provider as a process: `oidc-provider --help`.

use clap::Parser;
use local_oidc::{LocalProvider, ProviderConfig};
use tracing_subscriber::EnvFilter;

/// A local stand-in for an OpenID provider (Google and the like): discovery,
/// authorization code with PKCE, ES256-signed ID tokens. It signs in without asking.
#[derive(Debug, Parser)]
#[command(name = "oidc-provider", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "OIDC_LISTEN", default_value = "127.0.0.1:8092")]
    listen: String,
    /// Issuer URL (empty: http://<listen>).
    #[arg(long, env = "OIDC_ISSUER", default_value = "")]
    issuer: String,
    #[arg(long, env = "OIDC_CLIENT_ID", default_value = "booking-local")]
    client_id: String,
    #[arg(
        long,
        env = "OIDC_CLIENT_SECRET",
        default_value = "oidc-local-development-secret",
        hide_env_values = true
    )]
    client_secret: String,
    /// Registered redirect URIs, comma-separated (empty: any).
    #[arg(
        long,
        env = "OIDC_REDIRECT_URIS",
        default_value = "",
        value_delimiter = ','
    )]
    redirect_uris: Vec<String>,
    /// Who is signed in when the request names no `login_hint`.
    #[arg(
        long,
        env = "OIDC_DEFAULT_EMAIL",
        default_value = "asha.oidc@example.com"
    )]
    default_email: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let a = Args::parse();
    let provider = LocalProvider::build(ProviderConfig {
        listen: a.listen,
        issuer: a.issuer,
        client_id: a.client_id,
        client_secret: a.client_secret,
        redirect_uris: a
            .redirect_uris
            .into_iter()
            .filter(|u| !u.is_empty())
            .collect(),
        default_email: a.default_email,
        ..ProviderConfig::default()
    })
    .await?;
    tracing::info!(issuer = %provider.issuer(), "local OpenID provider listening");
    provider
        .run_until_stopped(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
