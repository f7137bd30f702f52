//! The system's processes: the real `ingress` and `workers` binaries as children of
//! the test ([`crate::process`]), and their handles.

use crate::process::ChildProcess;
use crate::{TestSystem, with_port};
use contracts::faults::FaultCounts;
use platform::Settings;
use std::net::SocketAddr;

/// A running `workers` process.
pub struct WorkerHandle {
    pub process: ChildProcess,
    /// Its name in `partitions.owner`.
    pub owner: String,
    /// Where it serves `/metrics`, `/healthz` and the test hook `/faults`.
    pub metrics_addr: Option<SocketAddr>,
    http: reqwest::Client,
}

impl WorkerHandle {
    fn faults_url(&self) -> String {
        let addr = self.metrics_addr.expect("the workers serve /faults");
        format!("http://{addr}/faults")
    }

    /// Arms `more` injected failures in the running process (added to those left).
    pub async fn arm(&self, more: Faults) {
        let res = self
            .http
            .post(self.faults_url())
            .json(&more)
            .send()
            .await
            .expect("POST /faults");
        assert!(res.status().is_success(), "POST /faults: {}", res.status());
    }

    /// The injected failures still to come (0 once each has happened).
    pub async fn faults_left(&self) -> Faults {
        self.http
            .get(self.faults_url())
            .send()
            .await
            .expect("GET /faults")
            .json()
            .await
            .expect("the /faults answer")
    }

    /// SIGTERM (graceful: the runners finish their batch) and waits; asserts the
    /// process exited cleanly.
    pub async fn stop(self) {
        let status = self.process.terminate().await;
        assert!(status.success(), "workers exited with {status} on SIGTERM");
    }

    /// This process's Prometheus text.
    pub async fn metrics(&self) -> String {
        let addr = self.metrics_addr.expect("the workers serve /metrics");
        self.http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("workers /metrics")
            .text()
            .await
            .expect("workers /metrics text")
    }

    /// The value of the series `name` (with its labels, as the text shows them) on
    /// this process's `/metrics`; 0 when absent.
    pub async fn counter(&self, name: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// SIGKILL: the process dies mid-work, as a crash.
    pub async fn kill(self) {
        let _ = self.process.kill().await;
    }
}

/// Injected failures of a `workers` process (see [`WorkerHandle::arm`]).
pub type Faults = FaultCounts;

/// A running `ingress` process.
pub struct IngressHandle {
    pub process: ChildProcess,
    /// Where the API listens.
    pub addr: SocketAddr,
    /// Where ingress serves `/metrics` and `/healthz`, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    http: reqwest::Client,
}

impl IngressHandle {
    /// `http://` and [`IngressHandle::addr`].
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// This process's Prometheus text (each process has its own recorder).
    pub async fn metrics(&self) -> String {
        let addr = self.metrics_addr.expect("ingress serves /metrics");
        self.http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("ingress /metrics")
            .text()
            .await
            .expect("ingress /metrics text")
    }

    /// SIGTERM and waits; asserts a clean exit.
    pub async fn stop(self) {
        let status = self.process.terminate().await;
        assert!(status.success(), "ingress exited with {status} on SIGTERM");
    }
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap_or_else(|e| panic!("an address in {url:?}: {e}"))
}

/// Starts the `ingress` binary with `settings`.
pub async fn start_ingress(settings: &Settings) -> IngressHandle {
    let process = ChildProcess::start("ingress", settings, "ingress listening on ").await;
    let addr = addr_of(
        process
            .startup_value("ingress listening on ")
            .expect("the listening line"),
    );
    let metrics_addr = process.startup_value("ingress metrics on ").map(addr_of);
    IngressHandle {
        process,
        addr,
        metrics_addr,
        http: reqwest::Client::new(),
    }
}

impl TestSystem {
    /// Starts one more `workers` process, with `faults` armed before it returns
    /// (and before the test sends it anything).
    pub async fn start_worker(&self, db_port: Option<u16>, faults: Faults) -> WorkerHandle {
        let mut s = self.settings.clone();
        s.redis.url = self.workers_redis_url.clone();
        if let Some(port) = db_port {
            s.database.url = with_port(&s.database.url, port);
        }
        s.workers.fault_injection = true;
        let process = ChildProcess::start("workers", &s, "workers running as ").await;
        let owner = process
            .startup_value("workers running as ")
            .expect("the running line")
            .to_owned();
        let metrics_addr = process.startup_value("workers metrics on ").map(addr_of);
        let w = WorkerHandle {
            process,
            owner,
            metrics_addr,
            http: self.http.clone(),
        };
        if faults != Faults::default() {
            w.arm(faults).await;
        }
        w
    }

    /// Another `ingress` process of this system with `settings` (e.g. the test's
    /// settings changed).
    pub async fn start_ingress(&self, settings: &Settings) -> IngressHandle {
        start_ingress(settings).await
    }

    /// The JSON log lines of every process of the system so far (ingress first).
    pub fn logs(&self) -> Vec<String> {
        let mut out = self.ingress.process.logs.lines();
        for w in &self.workers {
            out.extend(w.process.logs.lines());
        }
        out
    }
}
