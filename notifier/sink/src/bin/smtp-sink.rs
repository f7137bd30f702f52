//! `smtp-sink`: the bundled local SMTP receiver; stores each message as a `.eml` file.

use clap::Parser;
use smtp_sink::{SinkConfig, SmtpSink};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "A local SMTP receiver that stores every message as a .eml file")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SMTP_SINK_LISTEN", default_value = "127.0.0.1:2525")]
    listen: String,
    /// Folder the .eml files go to.
    #[arg(long, env = "SMTP_SINK_DIR", default_value = ".run/mail")]
    dir: PathBuf,
    /// Refuse the first N transactions with 451 (testing retries).
    #[arg(long, env = "SMTP_SINK_REFUSE_FIRST", default_value_t = 0)]
    refuse_first: u32,
    /// Reject recipients containing this text with 550 (testing bounces).
    #[arg(long, env = "SMTP_SINK_REJECT_PATTERN")]
    reject_pattern: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber_init();
    let a = Args::parse();
    let sink = SmtpSink::bind(SinkConfig {
        listen: a.listen,
        dir: a.dir,
        refuse_first: a.refuse_first,
        reject_pattern: a.reject_pattern.filter(|p| !p.is_empty()),
    })
    .await?;
    println!(
        "smtp-sink listening on port {}, storing mail in {}",
        sink.port(),
        sink.dir().display()
    );
    sink.run_until_stopped(async {
        drop(tokio::signal::ctrl_c().await);
    })
    .await;
    Ok(())
}

fn tracing_subscriber_init() {
    if let Ok(s) = platform::Settings::load() {
        platform::telemetry::init_logs(&s.telemetry);
    }
}
