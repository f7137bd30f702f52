//! What the machine and the processes under test did during a run: CPU seconds,
//! resident memory, the TCP listen queue, open connections and Prometheus pages,
//! read before and after the clock runs.

use crate::{fire, observe};
use anyhow::Context;
use std::collections::HashMap;

/// The processes watched during a run (by name, by pid, and loadgen itself).
pub struct Probes {
    pub watched: Vec<observe::Watched>,
    /// Resident memory of each before the warm-up: no client connection yet.
    pub rss_idle: Vec<Option<u64>>,
    port: u16,
    metrics_urls: Vec<String>,
}

/// One reading of everything [`Probes`] watches.
pub struct Snapshot {
    pub cpu: Vec<HashMap<u32, f64>>,
    pub all: HashMap<u32, (String, f64)>,
    pub machine: Option<(u64, u64, u64)>,
    pub listen: Option<(u64, u64)>,
    pub conns: usize,
    pub rss: Vec<Option<u64>>,
}

impl Probes {
    /// `pids_of`: process names; `pids`: `LABEL=PID` entries; `base`: the ingress URL
    /// whose port the connection count watches.
    pub fn new(
        pids_of: &[String],
        pids: &[String],
        base: &str,
        metrics_urls: &[String],
    ) -> anyhow::Result<Self> {
        let mut watched: Vec<observe::Watched> = pids_of
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| observe::Watched {
                label: n.clone(),
                name: Some(n.clone()),
                pids: vec![],
            })
            .collect();
        for p in pids {
            let (label, pid) = p.split_once('=').context("--pid takes LABEL=PID")?;
            watched.push(observe::Watched {
                label: label.to_owned(),
                name: None,
                pids: vec![pid.parse().context("--pid takes LABEL=PID")?],
            });
        }
        watched.push(observe::Watched {
            label: "loadgen (self)".to_owned(),
            name: None,
            pids: vec![std::process::id()],
        });
        let port = reqwest::Url::parse(base)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(80);
        let mut probes = Probes {
            watched,
            rss_idle: vec![],
            port,
            metrics_urls: metrics_urls.to_vec(),
        };
        probes.rss_idle = probes.rss();
        Ok(probes)
    }

    /// The largest resident set of each watched entry, in KiB.
    pub fn rss(&self) -> Vec<Option<u64>> {
        self.watched
            .iter()
            .map(|w| {
                w.current()
                    .iter()
                    .filter_map(|p| observe::status_kib(*p, "VmRSS"))
                    .max()
            })
            .collect()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            rss: self.rss(),
            listen: observe::listen_overflows(),
            conns: fire::established_to(self.port),
            cpu: self.watched.iter().map(observe::Watched::cpu).collect(),
            all: observe::all_cpu(),
            machine: observe::machine_jiffies(),
        }
    }

    /// Every Prometheus page, as it is now (an empty page when a scrape fails).
    pub async fn scrape_all(&self, client: &reqwest::Client) -> Vec<observe::Scrape> {
        let mut pages = vec![];
        for url in &self.metrics_urls {
            pages.push(observe::scrape(client, url).await.unwrap_or_default());
        }
        pages
    }

    /// What changed on each Prometheus page since `before`, as report lines.
    pub async fn metrics_delta(
        &self,
        client: &reqwest::Client,
        before: &[observe::Scrape],
    ) -> Vec<String> {
        let mut lines = vec![];
        for (url, before) in self.metrics_urls.iter().zip(before) {
            match observe::scrape(client, url).await {
                Ok(after) => {
                    lines.push(format!("{url}:"));
                    lines.extend(
                        observe::describe_delta(before, &after)
                            .into_iter()
                            .map(|l| format!("  {l}")),
                    );
                }
                Err(e) => lines.push(format!("{url}: scrape failed: {e}")),
            }
        }
        lines
    }
}
