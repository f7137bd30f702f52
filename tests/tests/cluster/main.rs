//! A 3-node RabbitMQ cluster of the real server (started by the test on ports of its
//! own, the shared broker untouched) under a booking load through the real ingress
//! and workers: the node leading a partition's quorum queue is stopped, later
//! (after it rejoined) the next leader is killed with SIGKILL. Every booking the
//! clients were answered 202 for is decided exactly once, nothing is oversold, the
//! clients reconnect to the surviving nodes (every queue of the pipeline has its
//! consumer back), and the run's figures are printed.
//!
//! Slow (a few minutes: three nodes start, one restarts). Run alone with
//! `cargo test -p tests --test cluster -- --nocapture`.

mod balancer;
mod failover;
mod load;
mod sentinel;
mod tls;

use load::Load;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::cluster::RabbitCluster;
use tests::{SystemOptions, TestSystem, poll, spawn_system};

/// One test of this binary at a time: each starts several servers and measures
/// recovery times that two at once on a 2-core machine would distort. Held for the
/// whole test (also released when it panics).
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE.lock().await
}

/// Ports of the test's cluster: AMQP 5791..5793, distribution 25791..25793, epmd 4390
/// (`scripts/cluster/rabbitmq.sh` defaults to 5780/4380 for a cluster by hand).
const BASE_PORT: u16 = 5790;
const EPMD_PORT: u16 = 4390;

/// Bookings accepted after a recovery before the next step (the load goes on).
const AFTER_RECOVERY: usize = 200;

/// Longest wait for the cluster to have a new leader and every consumer back.
const RECOVERY_MAX: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_survive_the_loss_of_a_partition_leader_stopped_then_killed() {
    let _one = one_at_a_time().await;
    // Over TLS (amqps, verified against a CA made for the test): the clients'
    // reconnections to the other nodes are TLS handshakes too.
    let ca = tests::tls::LocalCa::new();
    let cluster = RabbitCluster::start(BASE_PORT, EPMD_PORT, Some(&ca));
    let urls = cluster.urls.clone();
    let sys = spawn_system(SystemOptions {
        settings_override: Some(Arc::new(move |s| {
            s.amqp.url = urls.clone();
            s.amqp.quorum_initial_group_size = 3;
        })),
        ..SystemOptions::default()
    })
    .await;
    let topo = sys.settings.topology();
    // Shows on every partition, the first one's partition is the one whose leader goes.
    let mut shows = vec![];
    while shows.len() < 4
        || !topo
            .all_partitions()
            .all(|p| shows.iter().any(|s| topo.partition_of(*s) == p))
    {
        shows.push(sys.show(20, 20).await);
    }
    let target = topo.partition_queue(topo.partition_of(shows[0]));
    let pipeline: Vec<String> = topo
        .all_partitions()
        .map(|p| topo.partition_queue(p))
        .chain([
            topo.saga_queue(),
            topo.webhooks_queue(),
            topo.notifier_queue(),
        ])
        .collect();
    let placement = cluster
        .placement(1, &target)
        .expect("the partition queue exists");
    assert_eq!(
        placement.members.len(),
        3,
        "replicated on all three: {placement:?}"
    );

    let load = Load::start(&sys, shows.clone(), 16).await;
    load.wait_accepted(50, Duration::from_secs(30)).await;

    // 1. The leader stopped by an operator.
    let stopped = placement.leader;
    let fault_a = fault(&sys, || cluster.stop_node(stopped)).await;
    let a = recovered(&cluster, &sys, &load, stopped, &target, &pipeline, fault_a).await;
    cluster.start_node(stopped);
    // As an operator would: the next fault only once the node is back in every
    // queue of the pipeline. Killing a second node before the first rejoined takes
    // two of three members away, and a quorum queue then rightly takes nothing.
    let rejoined = poll(RECOVERY_MAX, Duration::from_millis(500), || async {
        let ask = if stopped == 1 { 2 } else { 1 };
        let queues = tokio::task::block_in_place(|| cluster.queues(ask));
        let behind: Vec<&String> = pipeline
            .iter()
            .filter(|q| {
                !queues
                    .iter()
                    .any(|(n, p)| n == *q && p.online.contains(&stopped))
            })
            .collect();
        if behind.is_empty() {
            Ok(())
        } else {
            Err(format!("bk{stopped} not yet back in {behind:?}"))
        }
    })
    .await;
    if let Err(e) = rejoined {
        panic!("the stopped node did not rejoin within {RECOVERY_MAX:?}: {e}");
    }

    // 2. The (new) leader killed.
    let killed = cluster
        .placement(stopped, &target)
        .expect("the queue")
        .leader;
    let fault_b = fault(&sys, || cluster.kill_node(killed)).await;
    let b = recovered(&cluster, &sys, &load, killed, &target, &pipeline, fault_b).await;

    let outcomes = load.finish().await;
    let accepted = load::assert_decided_exactly_once(&sys, &outcomes).await;
    let errors: usize = outcomes.iter().map(|o| o.errors).sum();
    let held: i64 =
        sqlx::query_scalar("select count(*) from booking_seats where released_at is null")
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    assert!(held <= 400 * shows.len() as i64);

    // How ingress's publisher lived through it (each process has its own counters).
    let metrics = sys.ingress_metrics().await;
    let total = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    };
    println!(
        "cluster run: {} requests, {} accepted, {} errors seen by clients (answered again \
         on retry), {} seats held; leader stopped: {a}; leader killed: {b}; ingress's \
         publisher: {} reconnections, {} publishes nacked",
        outcomes.len(),
        accepted.len(),
        errors,
        held,
        total("amqp_publisher_reconnects_total"),
        total("amqp_publisher_nacks_total"),
    );
    sys.shutdown().await;
    drop(cluster);
}

/// Notes the database clock, then runs `act` (off the async threads: the script
/// waits for the node).
async fn fault(sys: &TestSystem, act: impl FnOnce()) -> Fault {
    let at: time::OffsetDateTime = sqlx::query_scalar("select now()")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    let started = Instant::now();
    tokio::task::block_in_place(act);
    Fault { at, started }
}

struct Fault {
    at: time::OffsetDateTime,
    started: Instant,
}

/// Figures of one fault.
struct Recovery {
    /// From the fault to a new leader with a consumer on every pipeline queue.
    consumers_back: Duration,
    /// From the fault to the first decision of a booking accepted after it on the
    /// target partition.
    first_decision: Duration,
    /// Requests answered with an error (then retried) after the fault.
    errors: usize,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "consumers back in {:.1} s, first decision on the partition after {:.1} s, {} errors",
            self.consumers_back.as_secs_f64(),
            self.first_decision.as_secs_f64(),
            self.errors
        )
    }
}

/// Waits until the cluster (asked on a surviving node) has a leader for `target`
/// elsewhere than `lost` and every pipeline queue has a consumer, then until a
/// booking accepted after the fault is decided on the target partition.
async fn recovered(
    cluster: &RabbitCluster,
    sys: &TestSystem,
    load: &Load,
    lost: usize,
    target: &str,
    pipeline: &[String],
    fault: Fault,
) -> Recovery {
    let ask = if lost == 1 { 2 } else { 1 };
    let back = poll(RECOVERY_MAX, Duration::from_millis(500), || async {
        let queues = tokio::task::block_in_place(|| cluster.queues(ask));
        let leader_moved = queues.iter().any(|(n, p)| n == target && p.leader != lost);
        let missing: Vec<&String> = pipeline
            .iter()
            .filter(|q| !queues.iter().any(|(n, p)| n == *q && p.consumers > 0))
            .collect();
        if leader_moved && missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "leader moved: {leader_moved}; without a consumer: {missing:?}"
            ))
        }
    })
    .await;
    let consumers_back = fault.started.elapsed();
    if let Err(e) = back {
        panic!("not recovered within {RECOVERY_MAX:?}: {e}");
    }
    let shows = load.shows_on(sys, target);
    let first: time::OffsetDateTime = sys
        .until_some(RECOVERY_MAX, "a decision after the fault", || async {
            let after = load.accepted_since(fault.started);
            sqlx::query_scalar(
                "select min(recorded_at) from booking_events
                  where booking_id = any($1) and show_id = any($2)",
            )
            .bind(&after)
            .bind(&shows)
            .fetch_one(&sys.pool)
            .await
            .unwrap()
        })
        .await;
    load.wait_accepted(load.accepted() + AFTER_RECOVERY, RECOVERY_MAX)
        .await;
    Recovery {
        consumers_back,
        first_decision: Duration::try_from(first - fault.at).unwrap_or_default(),
        errors: load.errors_since(fault.started),
    }
}
