//! The figures of a run: requests, faults with their times, what clients saw in
//! the window after each fault, and how long each took to recover.

use crate::check::Check;
use crate::drive::{Log, Op};
use crate::system::FaultRun;
use std::collections::BTreeMap;

/// What the clients saw around one fault.
pub struct FaultFigures {
    pub errors: BTreeMap<String, usize>,
    pub not_found: usize,
    /// Seconds from the end of the fault to the first 202.
    pub accept_after: Option<f64>,
    /// Seconds from the end of the fault to the decision of the first booking
    /// accepted after it.
    pub decide_after: Option<f64>,
}

fn status_name(s: u16) -> String {
    if s == 0 {
        "no answer".into()
    } else {
        s.to_string()
    }
}

/// Figures of fault `i`: its window runs from its start to the next fault's start
/// (or the end of the load).
pub fn fault_figures(log: &Log, faults: &[FaultRun], i: usize, load_end: f64) -> FaultFigures {
    let f = &faults[i];
    let until = faults.get(i + 1).map_or(load_end, |n| n.start);
    let mut errors = BTreeMap::new();
    for o in log.obs.iter().filter(|o| o.at >= f.start && o.at < until) {
        if !matches!(o.status, 200 | 202) {
            *errors
                .entry(format!("{:?} {}", o.op, status_name(o.status)))
                .or_default() += 1;
        }
    }
    let accept_after = log
        .obs
        .iter()
        .filter(|o| o.op == Op::Book && o.status == 202 && o.at >= f.end)
        .map(|o| o.at - f.end)
        .reduce(f64::min);
    let decide_after = log
        .bookings
        .values()
        .filter(|b| b.accepted >= f.end)
        .filter_map(|b| b.decided)
        .map(|d| d - f.end)
        .reduce(f64::min);
    FaultFigures {
        errors,
        not_found: log
            .not_found
            .iter()
            .filter(|(at, _)| *at >= f.start && *at < until)
            .count(),
        accept_after,
        decide_after,
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "never".to_owned(), |s| format!("{s:.1} s"))
}

pub struct Summary<'a> {
    pub seed: u64,
    pub load_secs: f64,
    pub log: &'a Log,
    pub faults: &'a [FaultRun],
    pub exits: &'a [(f64, String, String)],
    pub checks: &'a [Check],
    pub emails: &'a str,
    /// When the first copy of each duplicated email arrived (seconds from t0).
    pub dup_emails: &'a [f64],
    pub allowed: &'a [String],
}

impl Summary<'_> {
    pub fn print(&self) {
        let log = self.log;
        let mut by_op: BTreeMap<(Op, String), usize> = BTreeMap::new();
        for o in &log.obs {
            *by_op.entry((o.op, status_name(o.status))).or_default() += 1;
        }
        let count = |op: Op| log.obs.iter().filter(|o| o.op == op).count();
        println!(
            "\n== soak seed {}: {:.0} s of load",
            self.seed, self.load_secs
        );
        println!(
            "requests: {} (bookings {}, polls {}, cancellations {}); accepted bookings {}; booking requests given up after retries {}",
            log.obs.len(),
            count(Op::Book),
            count(Op::Get),
            count(Op::Cancel),
            log.bookings.len(),
            log.gave_up
        );
        let answers: Vec<String> = by_op
            .iter()
            .map(|((op, s), n)| format!("{op:?} {s}: {n}"))
            .collect();
        println!("answers: {}", answers.join(", "));
        println!("faults ({}):", self.faults.len());
        for (i, f) in self.faults.iter().enumerate() {
            let fig = fault_figures(log, self.faults, i, self.load_secs);
            let until = self.faults.get(i + 1).map_or(f64::MAX, |n| n.start);
            let dups = self
                .dup_emails
                .iter()
                .filter(|t| **t >= f.start && **t < until)
                .count();
            let errors: Vec<String> = fig
                .errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            println!(
                "  {:>2}. {:<14} {:<10} {:>6.1}-{:>6.1} s  first 202 after {}, first decision after {}; 404 after 202: {}; duplicated emails: {dups}; errors: {}{}",
                i + 1,
                f.kind.name(),
                f.target,
                f.start,
                f.end,
                secs(fig.accept_after),
                secs(fig.decide_after),
                fig.not_found,
                if errors.is_empty() {
                    "none".to_owned()
                } else {
                    errors.join(", ")
                },
                f.error
                    .as_ref()
                    .map(|e| format!("; INJECTION FAILED: {e}"))
                    .unwrap_or_default()
            );
        }
        if self.exits.is_empty() {
            println!("unplanned process exits: none");
        } else {
            for (at, name, st) in self.exits {
                println!("unplanned process exit: {name} at {at:.1} s ({st}), restarted");
            }
        }
        println!("emails by event: {}", self.emails);
        println!("checks:");
        for c in self.checks {
            let verdict = match (c.ok, self.allowed.iter().any(|a| a == c.name)) {
                (true, _) => "ok",
                (false, true) => "FAILED (allowed)",
                (false, false) => "FAILED",
            };
            println!("  {:<24} {:<16} {}", c.name, verdict, c.detail);
        }
    }
}
