//! Several nodes of the real servers for the multi-node tests, each started by its
//! script under `scripts/cluster/` on ports and directories of its own (the shared
//! servers are never touched) and stopped with the test (also when it panics): a
//! RabbitMQ cluster, Redis with Sentinels, HAProxy in front of several ingress, and
//! PostgreSQL with Patroni.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's package puts the server's scripts.
const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";

/// Runs one of the cluster scripts: its stdout, or a panic naming `what` failed
/// (with `hint`) and what it printed.
fn run_script(mut cmd: Command, what: &str, hint: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed{hint}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running 3-node cluster (`bk1..bk3@localhost`).
pub struct RabbitCluster {
    dir: PathBuf,
    script: PathBuf,
    base: u16,
    epmd: u16,
    tls_dir: Option<PathBuf>,
    /// `amqp.url`: every node, comma-separated.
    pub urls: String,
}

/// A quorum queue's placement, as the cluster reports it.
#[derive(Debug, Clone)]
pub struct QueuePlacement {
    /// 1..=3.
    pub leader: usize,
    pub members: Vec<usize>,
    /// The members running (a quorum queue's `online`).
    pub online: Vec<usize>,
    pub consumers: u64,
}

impl RabbitCluster {
    /// Starts three nodes on `base + 1..=3` (distribution ports 20000 above, their own
    /// epmd on `epmd`) in a new temporary directory and joins them, taking AMQP over
    /// TLS only with `tls`'s certificate when given (and [`RabbitCluster::urls`] then
    /// `amqps://` trusting its CA); panics, naming what is missing, when the server is
    /// not installed.
    pub fn start(base: u16, epmd: u16, tls: Option<&crate::tls::LocalCa>) -> Self {
        assert!(
            Path::new(RABBITMQ_BIN).join("rabbitmq-server").exists(),
            "{RABBITMQ_BIN}/rabbitmq-server not found: the cluster tests need the real \
             server (apt-get install rabbitmq-server)"
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster/rabbitmq.sh");
        let dir =
            std::env::temp_dir().join(format!("rabbit-cluster-{}", uuid::Uuid::new_v4().simple()));
        let mut cluster = Self {
            dir,
            script,
            base,
            epmd,
            tls_dir: tls.map(|ca| ca.dir().to_owned()),
            urls: String::new(),
        };
        let out = cluster.run(&["start"]);
        let urls = out.lines().last().unwrap_or_default().trim().to_owned();
        let scheme = if tls.is_some() { "amqps://" } else { "amqp://" };
        assert!(urls.starts_with(scheme), "the script printed {out}");
        cluster.urls = urls;
        cluster
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(&self.script)
            .arg(args[0])
            .arg(&self.dir)
            .args(&args[1..])
            .env("RABBIT_CLUSTER_BASE", self.base.to_string())
            .env("RABBIT_CLUSTER_EPMD_PORT", self.epmd.to_string());
        if let Some(tls) = &self.tls_dir {
            cmd.env("RABBIT_CLUSTER_TLS_DIR", tls);
        }
        cmd
    }

    /// Runs the script; its stdout, or a panic with its stderr.
    fn run(&self, args: &[&str]) -> String {
        run_script(self.command(args), &format!("rabbitmq.sh {args:?}"), "")
    }

    /// Stops node `n` the way an operator does (`rabbitmqctl stop`).
    pub fn stop_node(&self, n: usize) {
        self.run(&["stop-node", &n.to_string()]);
    }

    /// `kill -9` of node `n`'s Erlang VM.
    pub fn kill_node(&self, n: usize) {
        self.run(&["kill-node", &n.to_string()]);
    }

    /// Starts node `n` again (it rejoins the cluster with its data).
    pub fn start_node(&self, n: usize) {
        self.run(&["start-node", &n.to_string()]);
    }

    /// The placement of every queue, as node `ask` reports it.
    pub fn queues(&self, ask: usize) -> Vec<(String, QueuePlacement)> {
        let out = self.run(&["queues", &ask.to_string()]);
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        rows.iter()
            .filter_map(|r| {
                let node = |v: &serde_json::Value| {
                    v.as_str()
                        .and_then(|s| s.strip_prefix("bk"))
                        .and_then(|s| s.split('@').next())
                        .and_then(|s| s.parse::<usize>().ok())
                };
                Some((
                    r["name"].as_str()?.to_owned(),
                    QueuePlacement {
                        leader: node(&r["leader"])?,
                        members: r["members"]
                            .as_array()
                            .map(|m| m.iter().filter_map(node).collect())
                            .unwrap_or_default(),
                        online: r["online"]
                            .as_array()
                            .map(|m| m.iter().filter_map(node).collect())
                            .unwrap_or_default(),
                        consumers: r["consumers"].as_u64().unwrap_or(0),
                    },
                ))
            })
            .collect()
    }

    /// Every client connection as node `ask` reports it: its name and whether it is
    /// TLS (`rabbitmqctl list_connections name ssl`).
    pub fn connections(&self, ask: usize) -> Vec<(String, bool)> {
        let out = self.run(&["connections", &ask.to_string()]);
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        rows.iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or_default().to_owned(),
                    r["ssl"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// The placement of `queue` as node `ask` reports it (`None`: no leader now).
    pub fn placement(&self, ask: usize, queue: &str) -> Option<QueuePlacement> {
        self.queues(ask)
            .into_iter()
            .find(|(name, _)| name == queue)
            .map(|(_, p)| p)
    }
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        // Best effort: also on a panic of the test.
        let _ = self.command(&["stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis primary, a replica and three Sentinels (`scripts/cluster/redis.sh`) on
/// ports of their own, stopped with the test.
pub struct RedisSentinels {
    dir: PathBuf,
    script: PathBuf,
    base: u16,
    tls_dir: Option<PathBuf>,
    /// `redis.sentinels`.
    pub sentinels: String,
}

impl RedisSentinels {
    /// Data nodes on `base + 1..=2`, Sentinels 20000 above `base + 1..=3`; every one
    /// of them speaks TLS only, with `tls`'s certificate, when given (and
    /// [`RedisSentinels::sentinels`] are then `rediss://`).
    pub fn start(base: u16, tls: Option<&crate::tls::LocalCa>) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster/redis.sh");
        let dir =
            std::env::temp_dir().join(format!("redis-sentinel-{}", uuid::Uuid::new_v4().simple()));
        let mut me = Self {
            dir,
            script,
            base,
            tls_dir: tls.map(|ca| ca.dir().to_owned()),
            sentinels: String::new(),
        };
        let out = me.run("start");
        me.sentinels = out.lines().last().unwrap_or_default().trim().to_owned();
        assert!(me.sentinels.contains(':'), "the script printed {out}");
        me
    }

    fn command(&self, what: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(&self.script)
            .arg(what)
            .arg(&self.dir)
            .env("REDIS_CLUSTER_BASE", self.base.to_string());
        if let Some(tls) = &self.tls_dir {
            cmd.env("REDIS_CLUSTER_TLS_DIR", tls);
        }
        cmd
    }

    fn run(&self, what: &str) -> String {
        run_script(self.command(what), &format!("redis.sh {what}"), "")
    }

    /// The port of the primary the Sentinels name now.
    pub fn primary_port(&self) -> u16 {
        let out = self.run("primary");
        out.trim().parse().unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// `kill -9` of the primary.
    pub fn kill_primary(&self) {
        self.run("kill-primary");
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        let _ = self.command("stop").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// HAProxy in front of several ingress (`scripts/cluster/haproxy.sh`), on a free port
/// of its own, stopped with the test (also when it panics).
pub struct Balancer {
    dir: PathBuf,
    script: PathBuf,
    /// Where clients reach it, `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl Balancer {
    /// Starts HAProxy balancing over `backends`; panics, naming what is missing, when
    /// HAProxy is not installed.
    pub fn start(backends: &[std::net::SocketAddr]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster/haproxy.sh");
        let dir = std::env::temp_dir().join(format!("haproxy-{}", uuid::Uuid::new_v4().simple()));
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg("start").arg(&dir).arg(&listen);
        cmd.args(backends.iter().map(ToString::to_string));
        run_script(
            cmd,
            "haproxy.sh start",
            " (the multi-ingress test needs Debian's haproxy)",
        );
        Self {
            dir,
            script,
            base_url: format!("http://{listen}"),
        }
    }

    /// Each backend server's name (`ingress1`, ...), status (`UP`, `DOWN`, ...) and
    /// the sessions it was given, from HAProxy's stats CSV.
    pub async fn servers(&self) -> Vec<(String, String, u64)> {
        let csv = reqwest::get(format!("{}/haproxy?stats;csv", self.base_url))
            .await
            .expect("haproxy stats")
            .text()
            .await
            .expect("haproxy stats text");
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
        let (px, sv, status, stot) = (col("pxname"), col("svname"), col("status"), col("stot"));
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.get(px) == Some(&"ingress") && f[sv] != "BACKEND")
            .map(|f| {
                (
                    f[sv].to_owned(),
                    f[status].to_owned(),
                    f[stot].parse().unwrap_or(0),
                )
            })
            .collect()
    }

    /// The log HAProxy wrote (one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL with automatic failover (`scripts/cluster/postgres.sh`): Patroni with
/// a primary and a synchronous standby, its lock in etcd, HAProxy routing to the
/// primary; ports from `base`, stopped with the test (also when it panics).
pub struct PgCluster {
    dir: PathBuf,
    script: PathBuf,
    base: u16,
    tls_dir: Option<PathBuf>,
    /// The clients' URL (through HAProxy), database `postgres`.
    pub url: String,
}

impl PgCluster {
    /// Starts etcd, both nodes and HAProxy, the nodes serving TLS only with `tls`'s
    /// certificate (and [`PgCluster::url`] asking `verify-full`) when given; panics,
    /// naming what is missing, when Patroni, etcd or HAProxy is not installed.
    pub fn start(base: u16, tls: Option<&crate::tls::LocalCa>) -> Self {
        // `leader` asks Patroni's API with reqwest, possibly before a system starts.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster/postgres.sh");
        let dir =
            std::env::temp_dir().join(format!("pg-cluster-{}", uuid::Uuid::new_v4().simple()));
        let mut cluster = Self {
            dir,
            script,
            base,
            tls_dir: tls.map(|ca| ca.dir().to_owned()),
            url: String::new(),
        };
        let out = cluster.run(&["start"]);
        cluster.url = out.lines().last().unwrap_or_default().trim().to_owned();
        assert!(
            cluster.url.starts_with("postgres://"),
            "the script printed {out}"
        );
        cluster
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(&self.script)
            .arg(args[0])
            .arg(&self.dir)
            .args(&args[1..])
            .env("PG_CLUSTER_BASE", self.base.to_string());
        if let Some(tls) = &self.tls_dir {
            cmd.env("PG_CLUSTER_TLS_DIR", tls);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        run_script(
            self.command(args),
            &format!("postgres.sh {args:?}"),
            " (the failover test needs Debian's patroni, etcd-server and haproxy)",
        )
    }

    /// `kill -9` of node `n`'s Patroni and PostgreSQL: the node is lost.
    pub fn kill_node(&self, n: usize) {
        self.run(&["kill-node", &n.to_string()]);
    }

    /// Starts node `n` again; it rejoins as a standby.
    pub fn start_node(&self, n: usize) {
        self.run(&["start-node", &n.to_string()]);
    }

    /// The leader (1 or 2) and whether a synchronous standby follows it, as Patroni's
    /// REST API on a node that is up tells; `None` while there is no leader.
    pub async fn leader(&self) -> Option<(usize, bool)> {
        for n in [1, 2] {
            let url = format!("http://127.0.0.1:{}/cluster", self.base + 1000 + n);
            let Ok(res) = reqwest::get(&url).await else {
                continue;
            };
            let Ok(cluster) = res.json::<serde_json::Value>().await else {
                continue;
            };
            let members = cluster["members"].as_array().cloned().unwrap_or_default();
            let role = |r: &str| {
                members
                    .iter()
                    .find(|m| m["role"] == r && m["state"] != "stopped")
                    .and_then(|m| m["name"].as_str()?.strip_prefix("pg")?.parse().ok())
            };
            if let Some(leader) = role("leader") {
                return Some((leader, role("sync_standby").is_some()));
            }
        }
        None
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.command(&["stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
