//! Runs the `ceiling` scenario ([`crate::ceiling`]) and reports it: each ceiling's
//! rate, latency, the machine's busy share and the CPU of every watched process per
//! request or message, then a `SUMMARY {json}` line like the other scenarios.

use crate::ceiling::{self, BrokerTarget, Ceiling};
use crate::probe::{Probes, Snapshot};
use crate::{Cli, fire, observe, report};
use std::time::Instant;

/// The queue the broker ceiling uses: under the run's AMQP prefix, apart from the
/// partition queues.
const QUEUE: &str = "ceiling.broker";

pub async fn run(cli: &Cli, settings: &platform::Settings, base: &str) -> anyhow::Result<i32> {
    let client = fire::client()?;
    let probes = Probes::new(&cli.pids_of, &cli.pids, base, &cli.metrics_url)?;
    if cli.warm_up {
        let started = Instant::now();
        let (held, failed) = fire::warm_up(&client, base, cli.concurrency, 5).await;
        println!(
            "warm-up: {held} keep-alive connections held after {:.2} s ({failed} warm-up requests failed)",
            started.elapsed().as_secs_f64()
        );
    }
    println!();
    println!("== loadgen Ceiling ==");
    let before = probes.snapshot();
    let http = ceiling::http(&client, base, cli.requests, cli.concurrency).await;
    let mid = probes.snapshot();
    let topo = settings.topology();
    let target = BrokerTarget {
        url: &settings.amqp.url,
        queue: format!("{}{QUEUE}", settings.amqp.prefix),
        queue_args: platform::amqp::partition_queue_args(&topo, settings.amqp.queue_shape()),
        prefetch: settings.workers.prefetch,
        batch_max: settings.workers.batch_size_max,
    };
    let broker = ceiling::broker(target, cli.requests, cli.concurrency).await?;
    let after = probes.snapshot();
    let mut summary = serde_json::Map::new();
    summary.insert("scenario".into(), "ceiling".into());
    let http_line = format!(
        "http ceiling      {} GET /healthz at concurrency {} ({} failed) in {:.2} s = {:.0} requests/s; latency {}",
        http.done,
        cli.concurrency,
        http.failed,
        http.elapsed.as_secs_f64(),
        http.per_sec(),
        report::quantiles(&http.latency_us)
    );
    summary.insert(
        "http".into(),
        phase(&http_line, &http, &probes, &before, &mid),
    );
    let broker_line = format!(
        "broker ceiling    {} persistent messages ({} failed) with confirms, {} awaiting theirs at most, one quorum queue, acked in batches of up to {}: {:.2} s from the first publish to the last ack = {:.0} messages/s; publish->confirm {}",
        broker.done,
        broker.failed,
        cli.concurrency,
        settings.workers.batch_size_max,
        broker.elapsed.as_secs_f64(),
        broker.per_sec(),
        report::quantiles(&broker.latency_us)
    );
    summary.insert(
        "broker".into(),
        phase(&broker_line, &broker, &probes, &mid, &after),
    );
    println!("SUMMARY {}", serde_json::Value::Object(summary));
    Ok(i32::from(http.failed > 0 || broker.failed > 0))
}

/// Prints one ceiling and the CPU each watched process spent on it; its summary.
fn phase(
    line: &str,
    c: &Ceiling,
    probes: &Probes,
    before: &Snapshot,
    after: &Snapshot,
) -> serde_json::Value {
    println!("{line}");
    let busy = match (before.machine, after.machine) {
        (Some((b0, _, t0)), Some((b1, _, t1))) if t1 > t0 => {
            Some((b1 - b0) as f64 / (t1 - t0) as f64 * 100.0)
        }
        _ => None,
    };
    println!(
        "  machine busy {}",
        busy.map_or_else(|| "?".to_owned(), |b| format!("{b:.0}%"))
    );
    let mut cpu = serde_json::Map::new();
    for (i, w) in probes.watched.iter().enumerate() {
        let secs = observe::cpu_between(&before.cpu[i], &after.cpu[i]);
        println!(
            "  {:<16} cpu {:.2} s, {:.1} µs each",
            w.label,
            secs,
            1e6 * secs / c.done.max(1) as f64
        );
        cpu.insert(w.label.clone(), secs.into());
    }
    serde_json::json!({
        "done": c.done,
        "failed": c.failed,
        "secs": c.elapsed.as_secs_f64(),
        "per_sec": c.per_sec(),
        "p50_us": c.latency_us.value_at_quantile(0.5),
        "p99_us": c.latency_us.value_at_quantile(0.99),
        "busy_percent": busy,
        "cpu_s": cpu,
    })
}
