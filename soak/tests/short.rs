//! The short soak that CI runs: two minutes of customers against the real `ingress`
//! and `workers` binaries (built by the same `cargo test --workspace`) on a
//! PostgreSQL, RabbitMQ and Redis of the soak's own, with a fixed seed and the
//! faults whose invariants hold today (see docs/reliability.md); fails on any broken
//! invariant, printing the figures.
//!
//! Some checks are allowed to fail, and say so in the figures (`FAILED (allowed)`),
//! because the bugs behind them are open (docs/reliability.md has the figures):
//! - `emails_once` and `no_dead_letters`: a workers process killed in the middle
//!   of a send leaves the event `sending` under a 105 s lease; the redeliveries
//!   meet the lease and run out of tries first (to `notifier.dlq`), so the email is
//!   never sent, or was sent and never recorded (issue 11, reliability finding 4).
//!
//! `no_404_after_202` (an accepted booking is recorded in PostgreSQL) and
//! `no_pending_after_decline` (the sequencer ignores the start of an attempt whose
//! failure came first) hold since their fixes.
//! Drop an `--allow` when its fix lands.

use clap::Parser;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_seeded_fault_schedule_keeps_every_invariant() {
    let opts = soak::Options::parse_from([
        "soak",
        "--seed",
        "20261207",
        "--minutes",
        "2",
        "--faults",
        "kill-workers,kill-ingress,rabbit-stop,pg-restart,redis-restart",
        "--gap",
        "10",
        "16",
        "--users",
        "8",
        "--quiesce-secs",
        "120",
        "--allow",
        "emails_once,no_dead_letters",
    ]);
    let outcome = soak::run(opts).await.expect("the soak ran to its checks");
    let broken: Vec<String> = outcome
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(
        outcome.passed,
        "invariants broken: {broken:#?} (logs in {})",
        outcome.work_dir.display()
    );
}
