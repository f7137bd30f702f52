//! Every connection of the platform to its backing services over verified TLS, on
//! several nodes of each: a 3-node RabbitMQ cluster taking `amqps` only, Redis (a
//! primary, a replica, three Sentinels) speaking TLS only, and PostgreSQL under
//! Patroni refusing connections without TLS, all with certificates of a CA made for
//! the test and nothing else trusted for them. A booking is made and paid through
//! the real ingress, runners, saga and notifier; then each server is asked whether
//! what reached it was TLS, and a plain connection to each is tried and fails.
//! (HTTPS on ingress itself: the e2e test `https`.)

use std::sync::Arc;
use std::time::Duration;
use tests::cluster::{PgCluster, RabbitCluster, RedisSentinels};
use tests::tls::LocalCa;
use tests::{SystemOptions, database_on, spawn_system};

/// Ports of this test's servers, apart from the other cluster tests': RabbitMQ on
/// 5801..5803 (epmd 4400), Redis on 6371/6372 (Sentinels 26371..26373), PostgreSQL's
/// HAProxy on 5450 (nodes 5451/5452, Patroni 6451/6452, etcd 7450/7451).
const RABBIT_BASE: u16 = 5800;
const RABBIT_EPMD: u16 = 4400;
const REDIS_BASE: u16 = 6370;
const PG_BASE: u16 = 5450;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_booking_reaches_rabbitmq_redis_and_postgres_clusters_over_verified_tls_only() {
    let _one = crate::one_at_a_time().await;
    let ca = Arc::new(LocalCa::new());
    let start = |f: fn(&LocalCa) -> Box<dyn std::any::Any + Send>| {
        let ca = ca.clone();
        tokio::task::spawn_blocking(move || f(&ca))
    };
    // The three start side by side (the RabbitMQ nodes take most of a minute).
    let (rabbit, redis, pg) = tokio::join!(
        start(|ca| Box::new(RabbitCluster::start(RABBIT_BASE, RABBIT_EPMD, Some(ca)))),
        start(|ca| Box::new(RedisSentinels::start(REDIS_BASE, Some(ca)))),
        start(|ca| Box::new(PgCluster::start(PG_BASE, Some(ca)))),
    );
    let rabbit = *rabbit.unwrap().downcast::<RabbitCluster>().unwrap();
    let redis = *redis.unwrap().downcast::<RedisSentinels>().unwrap();
    let pg = *pg.unwrap().downcast::<PgCluster>().unwrap();
    assert!(rabbit.urls.starts_with("amqps://"), "{}", rabbit.urls);
    assert!(
        redis.sentinels.starts_with("rediss://"),
        "{}",
        redis.sentinels
    );
    assert!(pg.url.contains("sslmode=verify-full"), "{}", pg.url);

    let (amqp, sentinels, pg_url) = (rabbit.urls.clone(), redis.sentinels.clone(), pg.url.clone());
    let ca_file = ca.ca_file.display().to_string();
    let sys = spawn_system(SystemOptions {
        settings_override: Some(Arc::new(move |s| {
            s.database.url = database_on(&pg_url, &s.database.url);
            s.amqp.url = amqp.clone();
            s.redis.sentinels = sentinels.clone();
            s.redis.master_name = "booking".into();
            s.redis.tls_ca_path = ca_file.clone();
        })),
        ..SystemOptions::default()
    })
    .await;

    let show = sys.show(1, 10).await;
    let (_, token) = sys.customer(1).await;
    let (status, accepted) = sys
        .submit(
            &token,
            "tls-1",
            serde_json::json!({"show_id": show.0, "seats": ["A1", "A2"], "payment_method": "pm_card_ok"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    let confirmed = sys
        .booking_until(&token, &id, "confirmed", |b| b["status"] == "confirmed")
        .await;
    assert_eq!(
        confirmed["seats"].as_array().map(Vec::len),
        Some(2),
        "{confirmed}"
    );

    // RabbitMQ: every client connection of the system (ingress's publisher, the
    // runners, the saga, the notifier, the outbox relay) is TLS.
    let conns = tokio::task::block_in_place(|| rabbit.connections(1));
    assert!(conns.len() >= 4, "the system's connections: {conns:?}");
    let plain: Vec<_> = conns.iter().filter(|(_, tls)| !tls).collect();
    assert!(plain.is_empty(), "connections without TLS: {plain:?}");
    // PostgreSQL: the pool's connections are TLS.
    let tls: bool = sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert!(tls, "the pool's connection is TLS");
    // Redis: the system wrote the show's seat map to the primary, reached over TLS.
    let primary = tokio::task::block_in_place(|| redis.primary_port());
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.ca_pem().as_bytes().to_vec()),
    };
    let mut conn = redis::Client::build_with_tls(format!("rediss://127.0.0.1:{primary}"), certs)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = platform::cache::Keys::new(sys.settings.redis.key_prefix.clone()).seatmap(show);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 1, "no seat map on the primary");

    // Nothing in the clear, and nothing without the CA: each server refuses.
    let plain_amqp = rabbit
        .urls
        .split(',')
        .next()
        .unwrap()
        .replace("amqps://", "amqp://");
    let plain_amqp = plain_amqp.split('?').next().unwrap();
    let quick = Duration::from_secs(5);
    assert!(
        platform::amqp::connect_within(plain_amqp, "plain", quick)
            .await
            .is_err(),
        "RabbitMQ took a connection without TLS"
    );
    let no_ca = rabbit
        .urls
        .split(',')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    assert!(
        platform::amqp::connect_within(no_ca, "untrusting", quick)
            .await
            .is_err(),
        "a client that does not trust the CA reached RabbitMQ"
    );
    let plain_redis = redis::Client::open(format!("redis://127.0.0.1:{primary}")).unwrap();
    if let Ok(mut c) = plain_redis.get_multiplexed_async_connection().await {
        assert!(
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_err(),
            "Redis answered in the clear"
        );
    }
    let plain_pg = pg.url.split('?').next().unwrap().to_owned() + "?sslmode=disable";
    assert!(
        sqlx::PgPool::connect(&plain_pg).await.is_err(),
        "PostgreSQL took a connection without TLS"
    );
    println!(
        "tls: a paid booking confirmed over {} TLS connections to RabbitMQ, TLS to Redis and PostgreSQL",
        conns.len()
    );
    sys.shutdown().await;
}
