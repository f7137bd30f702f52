//! Redis through Sentinel: a primary, a replica and three Sentinels of the real server
//! (started by the test on ports of its own, the shared Redis untouched). Under a
//! booking load the primary is killed with SIGKILL: the Sentinels promote the
//! replica, ingress and workers move to it, and bookings go on; every booking
//! answered 202 is decided exactly once, and the seat maps are written to the new
//! primary. Every node and Sentinel speaks TLS only, replication included, with a
//! certificate of a CA made for the test; the clients verify it
//! (`redis.tls_ca_path`).

use crate::load::{Load, Outcome};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::cluster::RedisSentinels;
use tests::tls::LocalCa;
use tests::{POLL, SystemOptions, poll, spawn_system};

/// Data nodes 6381/6382, Sentinels 26381..26383 (`scripts/cluster/redis.sh`
/// defaults to 6390 for a setup by hand).
const BASE_PORT: u16 = 6380;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_go_on_when_the_redis_primary_is_killed_and_a_sentinel_promotes_the_replica() {
    let _one = crate::one_at_a_time().await;
    let ca = LocalCa::new();
    let redis = RedisSentinels::start(BASE_PORT, Some(&ca));
    assert!(
        redis.sentinels.starts_with("rediss://"),
        "{}",
        redis.sentinels
    );
    let sentinels = redis.sentinels.clone();
    let ca_file = ca.ca_file.display().to_string();
    let sys = spawn_system(SystemOptions {
        settings_override: Some(Arc::new(move |s| {
            s.redis.sentinels = sentinels.clone();
            s.redis.master_name = "booking".into();
            s.redis.tls_ca_path = ca_file.clone();
        })),
        ..SystemOptions::default()
    })
    .await;
    let mut shows = vec![];
    for _ in 0..2 {
        shows.push(sys.show(20, 20).await);
    }
    let first = redis.primary_port();
    assert_eq!(first, BASE_PORT + 1);
    let load = Load::start(&sys, shows.clone(), 8).await;
    load.wait_accepted(100, Duration::from_secs(30)).await;

    let killed_at = Instant::now();
    redis.kill_primary();
    let promoted = poll(Duration::from_secs(30), POLL, || async {
        let now = tokio::task::block_in_place(|| redis.primary_port());
        if now == first { Err(now) } else { Ok(now) }
    })
    .await
    .expect("the Sentinels promote the replica");
    let promoted_after = killed_at.elapsed();
    load.wait_accepted(load.accepted() + 300, Duration::from_secs(60))
        .await;
    // Ingress moved to the new primary (its rate limiter asks Redis on every request).
    let metrics = sys.ingress_metrics().await;
    assert!(
        metrics.contains("redis_primary_switches_total"),
        "ingress never switched primaries"
    );
    // The workers write the live seat maps to the new primary.
    let tls = || redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.ca_pem().as_bytes().to_vec()),
    };
    let fresh = redis::Client::build_with_tls(format!("rediss://127.0.0.1:{promoted}"), tls())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Nothing in the clear: the same port refuses a plain connection, and a client
    // that does not trust the test's CA gets no further than the handshake.
    let plain = redis::Client::open(format!("redis://127.0.0.1:{promoted}")).unwrap();
    let mut plain = plain.get_multiplexed_async_connection().await;
    if let Ok(c) = &mut plain {
        assert!(redis::cmd("PING").query_async::<String>(c).await.is_err());
    }
    let untrusted = redis::Client::open(format!("rediss://127.0.0.1:{promoted}")).unwrap();
    assert!(
        untrusted.get_multiplexed_async_connection().await.is_err(),
        "a client that does not trust the CA connected"
    );
    let key = platform::cache::Keys::new(sys.settings.redis.key_prefix.clone()).seatmap(shows[0]);
    // Written after the failover (the copy replicated before it is removed first).
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut fresh.clone())
        .await
        .unwrap();
    sys.eventually(
        Duration::from_secs(30),
        "a seat map written to the new primary",
        || {
            let mut c = fresh.clone();
            let key = key.clone();
            async move {
                redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async::<i64>(&mut c)
                    .await
                    .is_ok_and(|n| n == 1)
            }
        },
    )
    .await;

    let outcomes = load.finish().await;
    let accepted: Vec<uuid::Uuid> = outcomes.iter().filter_map(Outcome::accepted).collect();
    let errors: usize = outcomes.iter().map(|o| o.errors).sum();
    assert_eq!(
        accepted.len(),
        outcomes.len(),
        "every request accepted in the end"
    );
    sys.wait_decided(&accepted, Duration::from_secs(120)).await;
    let twice: i64 = sqlx::query_scalar(
        "select count(*) from (select booking_id from booking_events
          where type in ('booking.held', 'booking.rejected') group by 1 having count(*) > 1) x",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(twice, 0, "a booking decided twice");
    let report = ops::reconcile::reconcile(&sys.pool).await.unwrap();
    assert!(report.ok, "{:#?}", report.problems);
    println!(
        "redis failover: {} requests, all accepted, {} errors seen by clients; the Sentinels \
         named the new primary {:.1} s after the kill",
        outcomes.len(),
        errors,
        promoted_after.as_secs_f64()
    );
    sys.shutdown().await;
}
