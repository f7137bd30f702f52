//! `bookctl`: the operator CLI. Parses, loads the settings and hands over to
//! [`bookctl::cli::run`]; every command lives in the library.

use clap::Parser;
use std::io::{BufRead, IsTerminal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = bookctl::cli::Cli::parse();
    let settings = platform::Settings::load()?;
    let stdin = std::io::stdin();
    let mut lock;
    // A confirmation is only asked on a terminal; piped input never says yes.
    let input: Option<&mut dyn BufRead> = if stdin.is_terminal() {
        lock = stdin.lock();
        Some(&mut lock)
    } else {
        None
    };
    bookctl::cli::run(&settings, cli, &mut std::io::stdout(), input).await
}
