//! The short soak that CI runs: two minutes of customers against the real `ingress`
//! and `workers` binaries (built by the same `cargo test --workspace`) on a
//! PostgreSQL, RabbitMQ and Redis of the soak's own, with a fixed seed and the
//! faults whose invariants hold today (see docs/reliability.md); fails on any broken
//! invariant, printing the figures.
//!
//! No check is allowed to fail. `emails_once` counts an email sent again after a
//! workers process was killed mid-send (the same Message-ID, under a new claim once
//! the dead sender's lease ran out) as the stated at-least-once guarantee, and fails
//! on an event without an email or a repeat under one claim. A check that has to be
//! let fail while its bug is open goes in `--allow`, with the reason here.

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
