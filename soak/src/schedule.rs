//! The fault schedule: drawn from the seed, printed before the run, so that
//! `--seed N` (with the same `--minutes` and `--faults`) replays it exactly.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    /// kill -9 of the active workers process; restarted after the pause.
    KillWorkers,
    /// SIGSTOP of the active workers process; SIGCONT after the pause.
    StopWorkers,
    /// kill -9 of ingress; restarted after the pause.
    KillIngress,
    /// `rabbitmqctl stop`; started again after the pause.
    RabbitStop,
    /// kill -9 of the RabbitMQ node; started again after the pause.
    RabbitKill,
    /// `pg_ctl restart -m fast`.
    PgRestart,
    /// `pg_ctl stop -m fast`, the pause (6-30 s), `pg_ctl start`.
    PgOutage,
    /// kill -9 of Redis (which keeps nothing) and a start after the pause.
    RedisRestart,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::KillWorkers,
        Kind::StopWorkers,
        Kind::KillIngress,
        Kind::RabbitStop,
        Kind::RabbitKill,
        Kind::PgRestart,
        Kind::PgOutage,
        Kind::RedisRestart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::KillWorkers => "kill-workers",
            Kind::StopWorkers => "stop-workers",
            Kind::KillIngress => "kill-ingress",
            Kind::RabbitStop => "rabbit-stop",
            Kind::RabbitKill => "rabbit-kill",
            Kind::PgRestart => "pg-restart",
            Kind::PgOutage => "pg-outage",
            Kind::RedisRestart => "redis-restart",
        }
    }

    /// The pause of the fault, in seconds: down time, stop time or restart delay.
    fn pause_range(self) -> (f64, f64) {
        match self {
            Kind::KillWorkers => (1.0, 5.0),
            Kind::StopWorkers => (5.0, 20.0),
            Kind::KillIngress => (1.0, 3.0),
            Kind::RabbitStop | Kind::RabbitKill => (3.0, 10.0),
            Kind::PgRestart => (0.0, 0.0),
            Kind::PgOutage => (6.0, 30.0),
            Kind::RedisRestart => (0.0, 2.0),
        }
    }

    /// A rough length of the fault, for fitting the schedule into the run (starting
    /// RabbitMQ takes several seconds of its own).
    fn cost(self, pause: f64) -> f64 {
        match self {
            Kind::RabbitStop | Kind::RabbitKill => pause + 10.0,
            Kind::PgRestart | Kind::PgOutage => pause + 2.0,
            _ => pause,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One planned fault: `gap` seconds after the previous one ended (or after the
/// start of the load for the first), for `pause` seconds.
#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: Kind,
    pub gap: f64,
    pub pause: f64,
}

/// Faults drawn in rounds (every allowed kind once per round, in a seeded order),
/// each after a seeded gap of `gap.0..gap.1` seconds, as many as fit in `secs`
/// (leaving the last gap for the recovery to be seen).
pub fn draw(rng: &mut StdRng, kinds: &[Kind], secs: f64, gap: (f64, f64)) -> Vec<Fault> {
    let mut out = Vec::new();
    if kinds.is_empty() {
        return out;
    }
    let mut used = 0.0;
    let mut round: Vec<Kind> = Vec::new();
    loop {
        if round.is_empty() {
            round = kinds.to_vec();
            round.shuffle(rng);
        }
        let kind = round.pop().expect("refilled above");
        let (lo, hi) = kind.pause_range();
        let pause = if hi > lo {
            (rng.random_range(lo..hi) * 10.0).round() / 10.0
        } else {
            lo
        };
        let g = (rng.random_range(gap.0..gap.1) * 10.0).round() / 10.0;
        // The fault, then at least a minimum gap to see the recovery.
        if used + g + kind.cost(pause) + gap.0 > secs {
            return out;
        }
        used += g + kind.cost(pause);
        out.push(Fault {
            kind,
            gap: g,
            pause,
        });
    }
}

pub fn print(faults: &[Fault]) {
    println!("fault schedule ({} faults):", faults.len());
    for (i, f) in faults.iter().enumerate() {
        println!(
            "  {:>2}. after {:>5.1} s: {:<14} pause {:>4.1} s",
            i + 1,
            f.gap,
            f.kind.name(),
            f.pause
        );
    }
}
