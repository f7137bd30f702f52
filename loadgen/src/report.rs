//! The run's report: human-readable lines, then one `SUMMARY {json}` line that
//! `scripts/bench.sh` and `BENCHMARKS.md` are built from.

use crate::figures::{Decisions, Oversell, Payments};
use crate::probe::{Probes, Snapshot};
use crate::{Cli, fire, observe, watch};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

pub fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

pub fn quantiles(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "n/a".to_owned();
    }
    format!(
        "p50 {}  p90 {}  p99 {}  max {}  (n={})",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.len()
    )
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Everything one run measured.
pub struct Run<'a> {
    pub cli: &'a Cli,
    pub run_id: &'a str,
    pub shows: usize,
    pub fired: &'a fire::Fired,
    pub watched: &'a watch::Watched,
    pub decisions: &'a Decisions,
    pub payments: &'a Payments,
    pub oversell: &'a Oversell,
    pub probes: &'a Probes,
    pub before: &'a Snapshot,
    pub after: &'a Snapshot,
    pub wall: Duration,
    pub t0_epoch: f64,
    pub metrics_lines: &'a [String],
}

impl Run<'_> {
    fn fire_s(&self) -> f64 {
        self.fired.elapsed.as_secs_f64()
    }

    fn decide_window_s(&self) -> f64 {
        let d = self.decisions;
        d.last_seen.saturating_sub(d.first_submit).as_secs_f64()
    }

    /// Prints the report and its `SUMMARY` line.
    pub fn print(&self) {
        println!();
        println!(
            "== loadgen {:?} (run {}) ==",
            self.cli.scenario, self.run_id
        );
        self.print_throughput();
        self.print_latency();
        self.print_outcome();
        let (machine_busy, machine_steal) = self.machine();
        println!(
            "processes         (CPU seconds during the run; peak resident memory; the machine's {} cores were {} busy, {} stolen by the hypervisor)",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            machine_busy.map_or_else(|| "?".to_owned(), |b| format!("{b:.0}%")),
            machine_steal.map_or_else(|| "?".to_owned(), |b| format!("{b:.0}%"))
        );
        let procs = self.print_processes();
        for l in self.metrics_lines {
            println!("{l}");
        }
        println!(
            "SUMMARY {}",
            self.summary(procs, machine_busy, machine_steal)
        );
    }

    fn print_throughput(&self) {
        let (cli, fired, d) = (self.cli, self.fired, self.decisions);
        println!(
            "requests          {} at concurrency {}{} (most in flight: {})",
            cli.requests,
            cli.concurrency,
            cli.rate
                .map(|r| format!(", paced at {r:.0}/s"))
                .unwrap_or_default(),
            fired.max_in_flight
        );
        let statuses: Vec<String> = fired
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        println!("answers           {}", statuses.join(", "));
        println!(
            "accepted          {} in {:.2} s = {:.0} accepted/s",
            fired.accepted,
            self.fire_s(),
            fired.accepted as f64 / self.fire_s()
        );
        println!(
            "decided           {} (held {}, rejected {}), last seen {:.2} s after the first submit = {:.0} decided/s",
            d.decided,
            d.held,
            d.rejected,
            self.decide_window_s(),
            d.decided as f64 / self.decide_window_s().max(1e-9)
        );
        if d.db_last > f64::MIN {
            let db_window = d.db_last - (self.t0_epoch + d.first_submit.as_secs_f64());
            println!(
                "                  by the database's clock (last decision transaction began {:.2} s after the first submit): {:.0} decided/s",
                db_window,
                d.decided as f64 / db_window.max(1e-9)
            );
        }
        let w = self.watched;
        if !w.other_statuses.is_empty() {
            println!("other statuses    {:?}", w.other_statuses);
        }
        if !w.undecided.is_empty() {
            println!(
                "UNDECIDED         {} accepted bookings had no row {} s after the last answer (e.g. {})",
                w.undecided.len(),
                cli.wait_secs,
                w.undecided[0].0
            );
        }
        println!("run wall time     {:.2} s", self.wall.as_secs_f64());
        println!(
            "connections       {} established at the start, {} at the end",
            self.before.conns, self.after.conns
        );
        if let (Some((o0, d0)), Some((o1, d1))) = (self.before.listen, self.after.listen) {
            println!(
                "TCP listen queue  {} overflows, {} drops during the run (SYNs dropped: the client retries after 1 s, 3 s, ...)",
                o1 - o0,
                d1 - d0
            );
        }
    }

    fn print_latency(&self) {
        let (cli, fired, d, w) = (self.cli, self.fired, self.decisions, self.watched);
        println!("HTTP accept (202) {}", quantiles(&fired.accept_us));
        if !fired.other_us.is_empty() {
            println!("HTTP other        {}", quantiles(&fired.other_us));
        }
        println!(
            "submit->decided   {}   [loadgen sees the row; poll every {} ms + query time]",
            quantiles(&d.decided_us),
            cli.poll_ms
        );
        println!("submit->held      {}", quantiles(&d.held_us));
        println!(
            "submit->decided   {}   [database clock: booking_events.recorded_at, a lower bound]",
            quantiles(&d.db_decided_us)
        );
        println!(
            "watcher           {:?}: {} polls, mean {:.1} ms, max {:.1} ms, most pending {}{}",
            cli.watch,
            w.polls,
            w.poll_time.as_secs_f64() * 1000.0 / (w.polls.max(1) as f64),
            w.poll_max.as_secs_f64() * 1000.0,
            w.max_pending,
            if cli.watch == watch::Mode::Tail {
                format!(
                    ", {} missed by the tail and found by the once-a-second id lookup",
                    w.missed_by_tail
                )
            } else {
                String::new()
            }
        );
    }

    fn print_outcome(&self) {
        let (p, o) = (self.payments, self.oversell);
        if let Some(pm) = &self.cli.payment_method {
            println!(
                "paid ({pm})  {} confirmed of {} held, {} still unpaid; {:.0} confirmed/s (first submit to last confirmation)",
                p.confirmed,
                p.held,
                p.unpaid,
                p.confirmed as f64 / p.window_s.max(1e-9)
            );
            println!(
                "submit->confirmed {}   [database clock: booking_events.recorded_at of booking.confirmed]",
                quantiles(&p.confirmed_us)
            );
        }
        println!(
            "seats             {} live of {} ({} of {} shows full)",
            o.live_seats, o.total_capacity, o.full_shows, self.shows
        );
        println!(
            "oversell          {} doubly allocated seats, {} shows over capacity -> {}",
            o.doubled,
            o.over_capacity.len(),
            if o.ok() { "OK" } else { "OVERSOLD" }
        );
    }

    /// The machine's busy and stolen shares of the run, in percent.
    fn machine(&self) -> (Option<f64>, Option<f64>) {
        match (self.before.machine, self.after.machine) {
            (Some((b0, s0, t0)), Some((b1, s1, t1))) if t1 > t0 => (
                Some((b1 - b0) as f64 / (t1 - t0) as f64 * 100.0),
                Some((s1 - s0) as f64 / (t1 - t0) as f64 * 100.0),
            ),
            _ => (None, None),
        }
    }

    /// One line per watched process (and one for everything else); their figures
    /// for the summary.
    fn print_processes(&self) -> BTreeMap<String, serde_json::Value> {
        let (before, after, wall) = (self.before, self.after, self.wall.as_secs_f64());
        let mut procs = BTreeMap::new();
        // CPU per unit of work: per paid booking when paying, else per decision.
        let per = if self.cli.payment_method.is_some() {
            (self.payments.confirmed, "confirmed booking")
        } else {
            (self.decisions.decided, "decision")
        };
        let mut total = 0.0;
        for (i, wch) in self.probes.watched.iter().enumerate() {
            let cpu = observe::cpu_between(&before.cpu[i], &after.cpu[i]);
            let pids = wch.current();
            let kib = |field| {
                pids.iter()
                    .filter_map(|p| observe::status_kib(*p, field))
                    .max()
            };
            let (hwm, rss) = (kib("VmHWM"), kib("VmRSS"));
            let mib = |k: Option<u64>| k.unwrap_or(0) as f64 / 1024.0;
            let mem = match (pids.len(), hwm) {
                (_, None) => "memory n/a".to_owned(),
                (1, Some(h)) => format!(
                    "VmHWM {:.1} MiB, VmRSS {:.1} MiB (before the warm-up {:.1} MiB, at the start {:.1} MiB)",
                    h as f64 / 1024.0,
                    mib(rss),
                    mib(self.probes.rss_idle[i]),
                    mib(before.rss[i])
                ),
                (n, Some(h)) => format!(
                    "{n} processes, largest VmHWM {:.1} MiB (shared memory counted in each)",
                    h as f64 / 1024.0
                ),
            };
            println!(
                "  {:<16} cpu {:.2} s ({:.0}% of one core, {:.0} µs per {}), {mem}",
                wch.label,
                cpu,
                100.0 * cpu / wall,
                1e6 * cpu / per.0.max(1) as f64,
                per.1,
            );
            total += cpu;
            procs.insert(
                wch.label.clone(),
                serde_json::json!({ "pids": pids, "cpu_s": cpu, "vm_hwm_kib": hwm, "vm_rss_kib": rss, "vm_rss_start_kib": before.rss[i], "vm_rss_idle_kib": self.probes.rss_idle[i] }),
            );
        }
        let known: std::collections::HashSet<u32> = before
            .cpu
            .iter()
            .chain(&after.cpu)
            .flat_map(|m| m.keys().copied())
            .collect();
        let (other_cpu, top) = observe::others(&before.all, &after.all, &known, 4);
        let top: Vec<String> = top.iter().map(|(n, c)| format!("{n} {c:.2} s")).collect();
        println!(
            "  {:<16} cpu {:.2} s ({:.0}% of one core){}",
            "everything else",
            other_cpu,
            100.0 * other_cpu / wall,
            if top.is_empty() {
                String::new()
            } else {
                format!(": {}", top.join(", "))
            }
        );
        println!(
            "  {:<16} cpu {:.2} s, {:.0} µs per {} (the watched processes, loadgen included; everything else apart)",
            "all watched",
            total,
            1e6 * total / per.0.max(1) as f64,
            per.1
        );
        procs
    }

    fn summary(
        &self,
        procs: BTreeMap<String, serde_json::Value>,
        machine_busy: Option<f64>,
        machine_steal: Option<f64>,
    ) -> serde_json::Value {
        let (cli, fired, d, p, o) = (
            self.cli,
            self.fired,
            self.decisions,
            self.payments,
            self.oversell,
        );
        let q = |h: &Histogram<u64>, q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
        let four =
            |h: &Histogram<u64>| serde_json::json!([q(h, 0.5), q(h, 0.9), q(h, 0.99), h.max()]);
        serde_json::json!({
            "scenario": format!("{:?}", cli.scenario).to_lowercase(),
            "run": self.run_id,
            "requests": cli.requests,
            "concurrency": cli.concurrency,
            "rate": cli.rate,
            "statuses": fired.statuses,
            "accepted": fired.accepted,
            "accepted_per_s": fired.accepted as f64 / self.fire_s(),
            "decided": d.decided,
            "held": d.held,
            "rejected": d.rejected,
            "undecided": self.watched.undecided.len(),
            "missed_by_tail": self.watched.missed_by_tail,
            "decided_per_s": d.decided as f64 / self.decide_window_s().max(1e-9),
            "accept_us": four(&fired.accept_us),
            "decided_us": four(&d.decided_us),
            "held_us": four(&d.held_us),
            "db_decided_us": four(&d.db_decided_us),
            "payment_method": cli.payment_method,
            "confirmed": p.confirmed,
            "confirmed_per_s": p.confirmed as f64 / p.window_s.max(1e-9),
            "confirmed_us": four(&p.confirmed_us),
            "oversold_seats": o.doubled,
            "shows_over_capacity": o.over_capacity.len(),
            "machine_busy_percent": machine_busy,
            "machine_steal_percent": machine_steal,
            "processes": procs,
        })
    }
}
