//! `sms-sink`: the bundled local SMS provider (Twilio's Messages API shape); stores
//! each message as a `.json` file.

use clap::Parser;
use smtp_sink::sms::{SmsConfig, SmsProvider};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    about = "A local SMS provider speaking Twilio's Messages API; stores every message as a .json file"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SMS_SINK_LISTEN", default_value = "127.0.0.1:8093")]
    listen: String,
    /// Folder the .json files go to.
    #[arg(long, env = "SMS_SINK_DIR", default_value = ".run/sms")]
    dir: PathBuf,
    /// The account sid clients must use (the development settings' one).
    #[arg(long, env = "SMS_SINK_ACCOUNT_SID", default_value = "ACdevelopment")]
    account_sid: String,
    /// The auth token clients must present.
    #[arg(
        long,
        env = "SMS_SINK_AUTH_TOKEN",
        default_value = "development-sms-auth-token"
    )]
    auth_token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Ok(s) = platform::Settings::load() {
        platform::telemetry::init_logs(&s.telemetry);
    }
    let a = Args::parse();
    let provider = SmsProvider::bind(SmsConfig {
        listen: a.listen,
        account_sid: a.account_sid,
        auth_token: a.auth_token,
        dir: Some(a.dir.clone()),
    })
    .await?;
    println!(
        "sms-sink listening on {}, storing messages in {}",
        provider.base_url(),
        a.dir.display()
    );
    provider
        .run_until_stopped(async {
            drop(tokio::signal::ctrl_c().await);
        })
        .await;
    Ok(())
}
