//! Two ingress behind HAProxy (`scripts/cluster/haproxy.sh`, health checks on
//! `/readyz`), one stopped with SIGTERM in the middle of a booking load, as a rolling
//! update does: no client sees an error (no reset, no 502/503 for a request already
//! sent), the stopped ingress exits cleanly, the balancer takes it out and sends
//! everything to the other, and every booking answered 202 is decided exactly once.

use crate::load::{self, Load};
use std::time::{Duration, Instant};
use tests::cluster::Balancer;
use tests::{POLL, SystemOptions, poll, spawn_system};

/// `ingress.drain_delay_ms` of both: longer than HAProxy takes to see `/readyz` fail
/// twice at a 500 ms interval.
const DRAIN_DELAY_MS: u64 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_ingress_behind_haproxy_lose_no_request_when_one_stops_with_sigterm() {
    let _one = crate::one_at_a_time().await;
    let sys = spawn_system(SystemOptions {
        settings_override: Some(std::sync::Arc::new(|s| {
            s.ingress.drain_delay_ms = DRAIN_DELAY_MS;
        })),
        ..Default::default()
    })
    .await;
    let second = sys.start_ingress(&sys.settings).await;
    let lb = Balancer::start(&[sys.ingress.addr, second.addr]);
    let both_up = poll(Duration::from_secs(20), POLL, || async {
        let servers = lb.servers().await;
        if servers.len() == 2 && servers.iter().all(|(_, st, _)| st == "UP") {
            Ok(())
        } else {
            Err(servers)
        }
    })
    .await;
    assert!(
        both_up.is_ok(),
        "both ingress up behind HAProxy: {both_up:?}"
    );

    let mut shows = vec![];
    for _ in 0..4 {
        shows.push(sys.show(20, 25).await);
    }
    let load = Load::start_at(&sys, &lb.base_url, shows, 32).await;
    load.wait_accepted(300, Duration::from_secs(60)).await;
    let before = lb.servers().await;
    assert!(
        before.iter().all(|(_, _, sessions)| *sessions > 0),
        "both ingress served bookings before the stop: {before:?}"
    );

    // The rolling update's step: SIGTERM, and the process drains and exits cleanly
    // (asserted by `stop`) while the load goes on.
    let stopped_at = Instant::now();
    second.stop().await;
    let drained_in = stopped_at.elapsed();
    let out = poll(Duration::from_secs(5), POLL, || async {
        let servers = lb.servers().await;
        let down = servers
            .iter()
            .any(|(name, st, _)| name == "ingress2" && st.starts_with("DOWN"));
        if down { Ok(()) } else { Err(servers) }
    })
    .await;
    assert!(out.is_ok(), "HAProxy took the stopped ingress out: {out:?}");
    // The load goes on through the one left.
    let after_stop = load.accepted();
    load.wait_accepted(after_stop + 300, Duration::from_secs(60))
        .await;

    let outcomes = load.finish().await;
    let errors: Vec<String> = outcomes
        .iter()
        .filter(|o| o.errors > 0)
        .filter_map(|o| o.last_error.clone())
        .collect();
    assert!(
        errors.is_empty(),
        "{} requests saw an error before their 202, e.g. {:?}; HAProxy's log ends:\n{}",
        errors.len(),
        errors.first(),
        lb.log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let accepted = load::assert_decided_exactly_once(&sys, &outcomes).await;
    println!(
        "balancer run: {} requests, {} accepted, 0 client errors; the stopped ingress \
         drained and exited in {drained_in:?}; sessions per ingress before the stop \
         {before:?}, at the end {:?}",
        outcomes.len(),
        accepted.len(),
        lb.servers().await
    );
    drop(lb);
    sys.shutdown().await;
}
