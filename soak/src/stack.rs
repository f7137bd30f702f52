//! The soak's own stores: a PostgreSQL cluster, a RabbitMQ node and a Redis server,
//! each on its own port with its data under the run's folder, so that stopping,
//! killing and restarting them disturbs nothing else on the machine. The shared
//! servers (5432, 5672, 6379) are never touched.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// `N` free TCP ports on 127.0.0.1 below Linux's ephemeral range (32768 and up),
/// from a start that depends on the process id: a server restarted by a fault
/// finds its port again, where an outgoing connection could have taken an
/// ephemeral one while it was down.
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let start = 20_000 + (std::process::id() % 1000) * 12;
    let mut ports = [0; N];
    let mut next = 0;
    for p in (start..32_000).chain(20_000..start) {
        let Ok(p) = u16::try_from(p) else { continue };
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            ports[next] = p;
            next += 1;
            if next == N {
                return Ok(ports);
            }
        }
    }
    bail!("no {N} free ports between 20000 and 32000")
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs `cmd` to completion; an error with its output when it fails.
async fn run(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        cmd.stdin(Stdio::null()).kill_on_drop(true).output(),
    )
    .await
    .with_context(|| format!("{what} did not finish in 180 s"))?
    .with_context(|| format!("running {what}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, text.trim());
    }
    Ok(text)
}

/// `kill -SIG pid` (the `kill` program: this workspace forbids unsafe code).
pub async fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    run(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string()),
        &format!("kill -{sig} {pid}"),
    )
    .await
    .map(drop)
}

/// A PostgreSQL 15+ cluster of its own (initdb, pg_ctl). PostgreSQL refuses to run
/// as root, so as root every command runs as the `postgres` account (runuser).
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

impl Postgres {
    /// The newest /usr/lib/postgresql/N/bin, or `SOAK_PG_BIN`.
    fn bin_dir() -> anyhow::Result<PathBuf> {
        if let Ok(dir) = std::env::var("SOAK_PG_BIN") {
            return Ok(dir.into());
        }
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .context("no /usr/lib/postgresql: install PostgreSQL or set SOAK_PG_BIN")?
            .filter_map(|e| {
                let e = e.ok()?;
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        found.sort();
        found
            .pop()
            .map(|(_, b)| b)
            .context("no initdb under /usr/lib/postgresql/*/bin")
    }

    fn cmd(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// initdb (trust logins) and start.
    pub async fn init(dir: &Path, port: u16) -> anyhow::Result<Self> {
        let pg = Self {
            bin: Self::bin_dir()?,
            data: dir.join("pg"),
            port,
            as_postgres: is_root(),
        };
        std::fs::create_dir_all(&pg.data)?;
        if pg.as_postgres {
            run(
                Command::new("chown").arg("postgres:").arg(&pg.data),
                "chown postgres",
            )
            .await?;
        }
        run(
            pg.cmd("initdb")
                .arg("-D")
                .arg(&pg.data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
                .arg("--no-sync"),
            "initdb",
        )
        .await?;
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\nshared_buffers = 64MB\n",
            pg.data.display()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(pg.data.join("postgresql.conf"))?;
        std::io::Write::write_all(&mut f, conf.as_bytes())?;
        pg.start().await?;
        Ok(pg)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn pg_ctl(&self, action: &str) -> Command {
        let mut c = self.cmd("pg_ctl");
        c.arg("-D").arg(&self.data).args(["-w", "-t", "120"]);
        c.arg("-l").arg(self.data.join("server.log")).arg(action);
        c
    }

    pub async fn start(&self) -> anyhow::Result<()> {
        run(&mut self.pg_ctl("start"), "pg_ctl start")
            .await
            .map(drop)
    }

    pub async fn stop(&self) -> anyhow::Result<()> {
        run(self.pg_ctl("stop").args(["-m", "fast"]), "pg_ctl stop")
            .await
            .map(drop)
    }

    pub async fn restart(&self) -> anyhow::Result<()> {
        run(
            self.pg_ctl("restart").args(["-m", "fast"]),
            "pg_ctl restart",
        )
        .await
        .map(drop)
    }

    /// Last resort on the way out (also from `Drop`): stop at once, ignore errors.
    fn stop_now(&self) {
        let mut c = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            std::process::Command::new(self.bin.join("pg_ctl"))
        };
        let _ = c
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Postgres {
    /// On every way out (an error, Ctrl-C, the end): nothing of the soak survives.
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A RabbitMQ node of its own: node name, ports, data, logs and config under the
/// run's folder, no plugins. Debian's /usr/sbin wrappers switch to the `rabbitmq`
/// account when run as root; the scripts they wrap run as the caller (its own
/// Erlang cookie in $HOME), so those are used when present.
pub struct Rabbit {
    dir: PathBuf,
    pub node: String,
    pub port: u16,
    dist_port: u16,
    child: Option<Child>,
    /// The Erlang VM's OS pid (asked from the node after each start).
    pub pid: Option<u32>,
    /// When the last start first took an AMQP connection (asking the pid after
    /// that takes seconds of its own on a busy machine).
    pub ready_at: Option<Instant>,
}

fn rabbit_program(name: &str) -> PathBuf {
    let direct = Path::new("/usr/lib/rabbitmq/bin").join(name);
    if direct.exists() { direct } else { name.into() }
}

impl Rabbit {
    pub async fn init(dir: &Path, port: u16, dist_port: u16) -> anyhow::Result<Self> {
        let dir = dir.join("rabbit");
        std::fs::create_dir_all(dir.join("mnesia"))?;
        std::fs::create_dir_all(dir.join("log"))?;
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
        )?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        let mut r = Self {
            dir,
            node: format!("soak-{}@localhost", std::process::id()),
            port,
            dist_port,
            child: None,
            pid: None,
            ready_at: None,
        };
        r.start().await?;
        Ok(r)
    }

    fn env(&self, c: &mut Command) {
        c.env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            );
    }

    fn ctl(&self) -> Command {
        let mut c = Command::new(rabbit_program("rabbitmqctl"));
        self.env(&mut c);
        c.args(["-n", &self.node]);
        c
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node and waits until it takes AMQP connections.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.out"))?;
        let mut c = Command::new(rabbit_program("rabbitmq-server"));
        self.env(&mut c);
        self.child = Some(
            c.stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .context("starting rabbitmq-server")?,
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(conn) = platform::amqp::connect(&self.url(), "soak-probe").await {
                self.ready_at = Some(Instant::now());
                drop(conn.close(200, "probe".into()).await);
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "RabbitMQ did not start in 120 s: see {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let out = run(
            self.ctl().args(["eval", "os:getpid()."]),
            "rabbitmqctl eval",
        )
        .await?;
        self.pid = out.trim().trim_matches('"').parse().ok();
        Ok(())
    }

    /// `rabbitmqctl stop`: a clean shutdown.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        run(self.ctl().arg("stop"), "rabbitmqctl stop").await?;
        self.reap().await;
        Ok(())
    }

    /// kill -9 of the Erlang VM.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let pid = self.pid.context("the node's pid is unknown")?;
        signal(pid, "KILL").await?;
        self.reap().await;
        Ok(())
    }

    async fn reap(&mut self) {
        if let Some(mut child) = self.child.take()
            && tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
        {
            drop(child.start_kill());
        }
        self.pid = None;
    }

    /// Last resort on the way out: kill -9 of the VM (known, or the child of the
    /// start script), then of the script.
    pub fn stop_now(&mut self) {
        let script = self.child.as_ref().and_then(Child::id);
        let vm = self.pid.take().or_else(|| {
            let out = std::process::Command::new("pgrep")
                .args(["-P", &script?.to_string()])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        });
        if let Some(pid) = vm {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        if let Some(mut c) = self.child.take() {
            drop(c.start_kill());
        }
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A Redis of its own that keeps nothing on disk: a restart loses every key, as a
/// crashed cache would.
pub struct Redis {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub async fn init(dir: &Path, port: u16) -> anyhow::Result<Self> {
        let mut r = Self {
            dir: dir.join("redis"),
            port,
            child: None,
        };
        std::fs::create_dir_all(&r.dir)?;
        r.start().await?;
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))?;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("redis-server did not listen in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// kill -9 (nothing is saved anyway).
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill().await?;
        }
        Ok(())
    }
}
