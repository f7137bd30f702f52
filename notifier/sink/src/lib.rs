//! A small local SMTP receiver: speaks enough SMTP for lettre (greeting, EHLO/HELO,
//! MAIL FROM, RCPT TO, DATA with dot-stuffing, RSET, NOOP, QUIT) and stores each
//! received message as a `.eml` file in a folder. The run command starts it (binary
//! `smtp-sink`); tests start it in-process on port 0 and read the files back.
//!
//! Hostility for tests: refuse the first N transactions with `451 4.3.0` (then
//! accept), and reject recipients containing a pattern with `550 5.1.1`.
//!
//! [`sms`]: the local SMS provider (binary `sms-sink`), the same kind of stand-in.

pub mod sms;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Longest command or data line accepted (RFC 5321 says 1000 with CRLF; be lenient).
const LINE_LEN_MAX: usize = 8 * 1024;
/// Largest message accepted.
const MESSAGE_LEN_MAX: usize = 16 * 1024 * 1024;
/// An idle client is dropped after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct SinkConfig {
    /// Address to listen on (`127.0.0.1:0` in tests).
    pub listen: String,
    /// Folder the `.eml` files go to (created if missing).
    pub dir: PathBuf,
    /// Refuse this many transactions (at MAIL FROM) with 451 before accepting.
    pub refuse_first: u32,
    /// Reject recipients whose address contains this (case-insensitive) with 550.
    pub reject_pattern: Option<String>,
}

/// What the sink did so far.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub refused: AtomicU32,
    pub rejected: AtomicU32,
    pub accepted: AtomicU32,
}

pub struct SmtpSink {
    listener: TcpListener,
    config: Arc<SinkConfig>,
    stats: Arc<SinkStats>,
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub path: PathBuf,
    pub raw: Vec<u8>,
}

impl SmtpSink {
    /// Creates the folder and binds the port.
    pub async fn bind(config: SinkConfig) -> std::io::Result<Self> {
        tokio::fs::create_dir_all(&config.dir).await?;
        let listener = TcpListener::bind(&config.listen).await?;
        Ok(Self {
            listener,
            config: Arc::new(config),
            stats: Arc::default(),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn dir(&self) -> PathBuf {
        self.config.dir.clone()
    }

    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Serves until `shutdown` resolves.
    pub async fn run_until_stopped(self, shutdown: impl std::future::Future<Output = ()>) {
        tracing::info!(port = self.port(), dir = %self.config.dir.display(), "smtp sink listening");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let (config, stats) = (self.config.clone(), self.stats.clone());
                        tokio::spawn(async move {
                            if let Err(e) = session(stream, &config, &stats).await {
                                tracing::debug!(error = %e, "smtp session ended");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "smtp accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}

/// Every `.eml` in `dir`, oldest first (file names start with the receive time).
pub fn read_messages(dir: &Path) -> std::io::Result<Vec<StoredMessage>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let raw = std::fs::read(&path)?;
            Ok(StoredMessage { path, raw })
        })
        .collect()
}

/// The address of `FROM:<a@b> SIZE=1` or `TO:<a@b>`.
fn address(arg: &str) -> String {
    let a = arg.split_once(':').map_or(arg, |(_, a)| a).trim();
    match (a.find('<'), a.find('>')) {
        (Some(i), Some(j)) if j > i => a[i + 1..j].to_owned(),
        _ => a.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

async fn read_line(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    buf.clear();
    let n = tokio::time::timeout(IDLE_TIMEOUT, async {
        let mut limited = (&mut *r).take(LINE_LEN_MAX as u64);
        limited.read_until(b'\n', buf).await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
    Ok(n > 0)
}

async fn session(stream: TcpStream, config: &SinkConfig, stats: &SinkStats) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 smtp-sink ESMTP ready\r\n").await?;
    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = vec![];
    let mut line = Vec::new();
    loop {
        if !read_line(&mut r, &mut line).await? {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = text.split_once([' ', ':']).unwrap_or((text, ""));
        let reply: &str = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => "250-smtp-sink\r\n250-8BITMIME\r\n250 SIZE 16777216",
            "HELO" => "250 smtp-sink",
            "MAIL" => {
                let n = stats.refused.load(Ordering::SeqCst);
                if n < config.refuse_first {
                    stats.refused.fetch_add(1, Ordering::SeqCst);
                    "451 4.3.0 temporarily refusing mail, try again later"
                } else {
                    from = Some(address(arg));
                    rcpts.clear();
                    "250 2.1.0 ok"
                }
            }
            "RCPT" => {
                let to = address(arg);
                if from.is_none() {
                    "503 5.5.1 MAIL first"
                } else if config
                    .reject_pattern
                    .as_deref()
                    .is_some_and(|p| to.to_lowercase().contains(&p.to_lowercase()))
                {
                    stats.rejected.fetch_add(1, Ordering::SeqCst);
                    "550 5.1.1 mailbox unavailable"
                } else {
                    rcpts.push(to);
                    "250 2.1.5 ok"
                }
            }
            "DATA" => {
                if from.is_none() || rcpts.is_empty() {
                    "503 5.5.1 RCPT first"
                } else {
                    w.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut body = Vec::new();
                    loop {
                        if !read_line(&mut r, &mut line).await? {
                            return Ok(());
                        }
                        if line == b".\r\n" || line == b".\n" {
                            break;
                        }
                        // Dot-stuffing: a leading ".." stands for ".".
                        let l = if line.starts_with(b"..") {
                            &line[1..]
                        } else {
                            &line[..]
                        };
                        if body.len() + l.len() > MESSAGE_LEN_MAX {
                            w.write_all(b"552 5.3.4 message too big\r\n").await?;
                            return Ok(());
                        }
                        body.extend_from_slice(l);
                    }
                    store(&config.dir, &body).await?;
                    stats.accepted.fetch_add(1, Ordering::SeqCst);
                    from = None;
                    rcpts.clear();
                    "250 2.0.0 ok: queued"
                }
            }
            "RSET" => {
                from = None;
                rcpts.clear();
                "250 2.0.0 ok"
            }
            "NOOP" => "250 2.0.0 ok",
            "QUIT" => {
                w.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not recognized",
        };
        w.write_all(reply.as_bytes()).await?;
        w.write_all(b"\r\n").await?;
    }
}

/// Writes atomically (a temporary name, then a rename), so a reader never sees half
/// a message.
async fn store(dir: &Path, body: &[u8]) -> std::io::Result<()> {
    let name = format!(
        "{:020}-{}",
        platform::now_millis().0,
        uuid::Uuid::new_v4().simple()
    );
    let tmp = dir.join(format!("{name}.tmp"));
    tokio::fs::write(&tmp, body).await?;
    tokio::fs::rename(&tmp, dir.join(format!("{name}.eml"))).await
}
