//! PostgreSQL's primary lost under a booking load (`scripts/cluster/postgres.sh`:
//! Patroni with a primary and a synchronous standby, its lock in etcd, HAProxy routing
//! clients to the primary; the shared server untouched). The primary's Patroni and
//! PostgreSQL are killed with SIGKILL; Patroni promotes the standby, HAProxy sends
//! the new connections there, the runners' batch commits that failed are redelivered
//! and retried against it, and every booking answered 202 is decided exactly once with
//! nothing lost (a decision acknowledged before the kill and lost with the primary
//! would leave its booking undecided: its command was already acked). Every
//! connection to PostgreSQL is TLS, verified against a CA made for the test
//! (`sslmode=verify-full`); the nodes refuse any other.

use crate::load::{self, Load};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::cluster::PgCluster;
use tests::tls::LocalCa;
use tests::{SystemOptions, database_on, poll, spawn_system};

/// HAProxy on 5440, the nodes on 5441-5442, Patroni's API on 6441-6442, etcd on
/// 7440-7441 (`scripts/cluster/postgres.sh`'s defaults).
const BASE_PORT: u16 = 5440;

/// Bookings accepted after the failover before the load stops.
const AFTER_FAILOVER: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_survive_the_loss_of_the_postgres_primary_and_patroni_promotes_the_standby() {
    let _one = crate::one_at_a_time().await;
    let ca = Arc::new(LocalCa::new());
    let pg = {
        let ca = ca.clone();
        tokio::task::spawn_blocking(move || PgCluster::start(BASE_PORT, Some(&*ca)))
            .await
            .expect("start the cluster")
    };
    let (first, sync) = pg.leader().await.expect("a leader");
    assert!(sync, "a synchronous standby follows the primary");
    let url = pg.url.clone();
    let sys = spawn_system(SystemOptions {
        settings_override: Some(Arc::new(move |s| {
            s.database.url = database_on(&url, &s.database.url);
        })),
        ..Default::default()
    })
    .await;
    // TLS, verified, on the system's connections; without TLS the nodes refuse.
    let tls: bool = sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert!(tls, "the pool's connection is TLS");
    let plain = pg.url.split('?').next().unwrap().to_owned() + "?sslmode=disable";
    let refused = sqlx::PgPool::connect(&plain).await;
    assert!(refused.is_err(), "a connection without TLS was accepted");
    let mut shows = vec![];
    for _ in 0..4 {
        shows.push(sys.show(20, 25).await);
    }
    let load = Load::start(&sys, shows, 16).await;
    load.wait_accepted(200, Duration::from_secs(60)).await;

    let killed_at = Instant::now();
    tokio::task::block_in_place(|| pg.kill_node(first));
    let promoted = poll(
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            match pg.leader().await {
                Some((leader, _)) if leader != first => Ok(leader),
                other => Err(other),
            }
        },
    )
    .await;
    let promoted_in = killed_at.elapsed();
    let second = promoted.expect("Patroni promoted the standby within 60 s");
    let accepted_before = load.accepted();
    load.wait_accepted(accepted_before + AFTER_FAILOVER, Duration::from_secs(120))
        .await;
    let resumed_in = killed_at.elapsed();

    let outcomes = load.finish().await;
    let errors = load_errors(&outcomes);
    // While there is no primary, ingress refuses what needs the database with a 503
    // and Retry-After (never a 500, never a dropped connection).
    let not_503: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| o.last_error.as_ref())
        .filter(|e| !e.starts_with("503 "))
        .collect();
    assert!(not_503.is_empty(), "errors other than 503: {not_503:?}");
    let accepted = load::assert_decided_exactly_once(&sys, &outcomes).await;
    println!(
        "postgres failover run: {} requests, {} accepted, {errors} errors seen by clients \
         (answered again on retry); pg{first} killed, pg{second} promoted after \
         {promoted_in:?}, {AFTER_FAILOVER} more bookings accepted {resumed_in:?} after the kill",
        outcomes.len(),
        accepted.len(),
    );
    sys.shutdown().await;
    drop(pg);
}

fn load_errors(outcomes: &[load::Outcome]) -> usize {
    outcomes.iter().map(|o| o.errors).sum()
}
