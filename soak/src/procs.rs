//! The platform's processes under test: the built `ingress` and `workers` binaries
//! (two workers processes: one active per partition, one standby), started with
//! the environment the run command gives them (APP_ENV=development, `APP__...`),
//! pointed at the soak's own stores. The local payment gateway and the SMTP sink,
//! which the soak never faults, run inside the driver (the same libraries as their
//! binaries).

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::{Child, Command};

/// Every address the processes talk to.
#[derive(Clone, Debug)]
pub struct Wiring {
    pub database_url: String,
    pub amqp_url: String,
    pub redis_url: String,
    pub ingress_port: u16,
    pub gateway_url: String,
    pub smtp_port: u16,
    pub hold_ttl_secs: u64,
    pub partitions: u16,
}

impl Wiring {
    /// The `APP__...` environment of the services (the run command's, plus short
    /// holds so that declined and unpaid bookings end within the run).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("APP_ENV", "development".to_owned()),
            ("APP__DATABASE__URL", self.database_url.clone()),
            ("APP__AMQP__URL", self.amqp_url.clone()),
            ("APP__AMQP__PARTITIONS", self.partitions.to_string()),
            ("APP__REDIS__URL", self.redis_url.clone()),
            (
                "APP__INGRESS__LISTEN",
                format!("127.0.0.1:{}", self.ingress_port),
            ),
            (
                "APP__INGRESS__HOLD_TTL_SECS",
                self.hold_ttl_secs.to_string(),
            ),
            ("APP__PAYMENTS__GATEWAY_URL", self.gateway_url.clone()),
            ("APP__NOTIFIER__SMTP_HOST", "127.0.0.1".to_owned()),
            ("APP__NOTIFIER__SMTP_PORT", self.smtp_port.to_string()),
            ("APP__WORKERS__METRICS_LISTEN", String::new()),
            (
                "APP__TELEMETRY__FILTER",
                std::env::var("SOAK_LOG_FILTER").unwrap_or_else(|_| "warn".to_owned()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ingress_port)
    }
}

/// One platform process, restartable.
pub struct Proc {
    pub name: String,
    program: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    pub fn new(name: &str, bin_dir: &Path, program: &str, wiring: &Wiring, logs: &Path) -> Self {
        Self {
            name: name.to_owned(),
            program: bin_dir.join(program),
            env: wiring.env(),
            log: logs.join(format!("{name}.log")),
            child: None,
        }
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(&self.program);
        // The caller's store addresses must not leak in (APP__ wins over them, but
        // a process that reads only these would reach the shared servers).
        for k in ["DATABASE_URL", "AMQP_URL", "REDIS_URL"] {
            cmd.env_remove(k);
        }
        let child = cmd
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// kill -9, reaped.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill().await?;
        }
        Ok(())
    }

    /// Whether it exited on its own (a crash the soak did not cause), with its status.
    pub fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(st)) => Some(st.to_string()),
            _ => None,
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: std::time::Duration) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if let Some(pid) = c.id() {
            drop(crate::stack::signal(pid, "TERM").await);
        }
        if tokio::time::timeout(grace, c.wait()).await.is_err() {
            drop(c.kill().await);
        }
    }
}

/// The binaries the soak runs, found in `bin_dir`: an error naming the build
/// command when one is missing.
pub fn check_binaries(bin_dir: &Path) -> anyhow::Result<()> {
    for b in ["ingress", "workers"] {
        anyhow::ensure!(
            bin_dir.join(b).is_file(),
            "{} is missing: build it first (`cargo build -p ingress -p workers`, or `cargo test --workspace`, which builds both)",
            bin_dir.join(b).display()
        );
    }
    Ok(())
}

/// "ingress built 3 min ago, workers built 3 min ago": a binary older than the
/// sources is not what is being tested (`cargo test -p soak` alone builds neither).
pub fn ages(bin_dir: &Path) -> String {
    ["ingress", "workers"]
        .iter()
        .map(|b| {
            let age = std::fs::metadata(bin_dir.join(b))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .map_or_else(|| "?".to_owned(), |d| format!("{} min", d.as_secs() / 60));
            format!("{b} built {age} ago")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
