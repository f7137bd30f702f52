//! Watching the processes under test from outside: CPU time and peak memory from
//! `/proc`, and histogram deltas from their Prometheus `/metrics`.

use std::collections::{BTreeMap, HashMap};

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on every Linux build
/// that matters).
const TICKS_PER_SEC: f64 = 100.0;

/// The processes of one label: matched by name (looked up again at each sample, so
/// that processes started during the run count) or given by id.
pub struct Watched {
    pub label: String,
    pub name: Option<String>,
    pub pids: Vec<u32>,
}

impl Watched {
    /// The processes now: by name, or the fixed ids.
    pub fn current(&self) -> Vec<u32> {
        match &self.name {
            Some(n) => pids_named(n),
            None => self.pids.clone(),
        }
    }

    /// CPU seconds so far of each process of the label.
    pub fn cpu(&self) -> HashMap<u32, f64> {
        self.current()
            .into_iter()
            .filter_map(|p| Some((p, cpu_secs(p)?)))
            .collect()
    }
}

/// Every process whose `/proc/<pid>/comm` is `name`.
pub fn pids_named(name: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end() == name)
                .unwrap_or(false)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// User plus system CPU seconds used so far by `pid`.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3 of proc(5); utime is 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// A `Vm*` line of `/proc/<pid>/status` in KiB (`VmHWM`: peak resident set).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// CPU seconds so far of every process of the machine, with its name.
pub fn all_cpu() -> HashMap<u32, (String, f64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some((pid, (name.trim_end().to_owned(), cpu_secs(pid)?)))
        })
        .collect()
}

/// The processes outside `known` that used the most CPU between two samples of
/// [`all_cpu`], summed by name: (total seconds, the top `n` as (name, seconds)).
pub fn others(
    before: &HashMap<u32, (String, f64)>,
    after: &HashMap<u32, (String, f64)>,
    known: &std::collections::HashSet<u32>,
    n: usize,
) -> (f64, Vec<(String, f64)>) {
    let mut by_name: HashMap<String, f64> = HashMap::new();
    for (pid, (name, a)) in after {
        if known.contains(pid) {
            continue;
        }
        let b = before.get(pid).map_or(0.0, |(_, b)| *b);
        *by_name.entry(name.clone()).or_default() += a - b;
    }
    let total = by_name.values().sum();
    let mut top: Vec<(String, f64)> = by_name.into_iter().filter(|(_, c)| *c > 0.0).collect();
    top.sort_by(|x, y| y.1.total_cmp(&x.1));
    top.truncate(n);
    (total, top)
}

/// CPU seconds between two samples: processes present in both count their
/// difference, processes born in between count in full (processes that ended in
/// between are lost).
pub fn cpu_between(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(p, a)| a - before.get(p).copied().unwrap_or(0.0))
        .sum()
}

/// Busy, stolen and total jiffies of the whole machine (the `cpu` line of
/// `/proc/stat`; "stolen" is time the hypervisor gave this VM's CPUs to others).
pub fn machine_jiffies() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, v.get(7).copied().unwrap_or(0), total))
}

/// `TcpExt` counters of `/proc/net/netstat` (this network namespace): connections
/// refused because a listen queue was full.
pub fn listen_overflows() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |n: &str| -> Option<u64> {
        let i = names.iter().position(|x| *x == n)?;
        values.get(i)?.parse().ok()
    };
    Some((get("ListenOverflows")?, get("ListenDrops")?))
}

/// One scrape of a Prometheus text page: per histogram (labels summed away), the
/// sum, the count and the cumulative bucket counts by upper bound.
#[derive(Default, Clone)]
pub struct Scrape {
    pub hist: BTreeMap<String, Hist>,
}

#[derive(Default, Clone)]
pub struct Hist {
    pub sum: f64,
    pub count: f64,
    pub buckets: BTreeMap<String, f64>,
}

pub async fn scrape(client: &reqwest::Client, url: &str) -> anyhow::Result<Scrape> {
    let text = client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let mut s = Scrape::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        if let Some(base) = name.strip_suffix("_sum") {
            s.hist.entry(base.to_owned()).or_default().sum += value;
        } else if let Some(base) = name.strip_suffix("_count") {
            s.hist.entry(base.to_owned()).or_default().count += value;
        } else if let Some(base) = name.strip_suffix("_bucket")
            && let Some(le) = labels
                .split(',')
                .find_map(|kv| kv.trim_end_matches('}').strip_prefix("le=\""))
        {
            *s.hist
                .entry(base.to_owned())
                .or_default()
                .buckets
                .entry(le.trim_end_matches('"').to_owned())
                .or_default() += value;
        }
    }
    Ok(s)
}

/// What changed between two scrapes, one line per histogram that moved.
pub fn describe_delta(before: &Scrape, after: &Scrape) -> Vec<String> {
    let mut lines = vec![];
    for (name, a) in &after.hist {
        let b = before.hist.get(name).cloned().unwrap_or_default();
        let count = a.count - b.count;
        if count <= 0.0 {
            continue;
        }
        let sum = a.sum - b.sum;
        let mut buckets: Vec<(f64, f64)> = a
            .buckets
            .iter()
            .map(|(le, v)| {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::INFINITY)
                };
                (bound, v - b.buckets.get(le).copied().unwrap_or(0.0))
            })
            .collect();
        buckets.sort_by(|x, y| x.0.total_cmp(&y.0));
        let q = |q: f64| {
            buckets
                .iter()
                .find(|(_, c)| *c >= q * count)
                .map(|(le, _)| format!("<={le}"))
                .unwrap_or_else(|| "?".to_owned())
        };
        let quantiles = if buckets.is_empty() {
            String::new()
        } else {
            format!("  p50 {}  p99 {}", q(0.5), q(0.99))
        };
        lines.push(format!(
            "{name}: count {count:.0}  sum {sum:.3}  mean {:.4}{quantiles}",
            sum / count
        ));
    }
    lines
}
