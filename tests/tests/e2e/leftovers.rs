//! The harness itself: a test that fails leaves nothing on the shared servers. Its
//! queues would otherwise pile up run after run on a broker that serves every run of
//! the suite (quorum queues by the thousand), and its databases on PostgreSQL.

use std::time::Duration;
use tests::{SystemOptions, spawn_system};

/// Whether queue `name` exists (a passive declare on a channel of its own).
async fn queue_exists(url: &str, name: &str) -> bool {
    let conn = platform::amqp::connect(url, "test-leftovers")
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let exists = platform::amqp::queue_counts(&ch, name).await.is_ok();
    drop(conn.close(200, "looked".into()).await);
    exists
}

async fn database_exists(pool: &sqlx::PgPool, name: &str) -> bool {
    sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("pg_database")
}

#[tokio::test]
async fn a_test_that_panics_leaves_no_queue_and_no_database_behind() {
    let mut names = None;
    let failing = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let sys = spawn_system(SystemOptions::default()).await;
        let topo = sys.settings.topology();
        let queues = vec![
            topo.partition_queue(0),
            topo.saga_queue(),
            topo.notifier_dlq(),
        ];
        names = Some((sys.settings.clone(), sys.db_name.clone(), queues));
        panic!("a test fails before calling shutdown");
    }))
    .await;
    assert!(failing.is_err(), "the test panicked");
    let (settings, db_name, queues) = names.expect("names");
    let admin = sqlx::PgPool::connect(&tests::with_database(&settings.database.url, "postgres"))
        .await
        .expect("postgres");
    assert!(
        !database_exists(&admin, &db_name).await,
        "{db_name} is left"
    );
    for q in queues {
        assert!(!queue_exists(&settings.amqp.url, &q).await, "{q} is left");
    }
    // And a system that is shut down removes the same (the usual path).
    let sys = spawn_system(SystemOptions::default()).await;
    let (url, name, q) = (
        sys.settings.amqp.url.clone(),
        sys.db_name.clone(),
        sys.settings.topology().partition_queue(1),
    );
    assert!(queue_exists(&url, &q).await);
    tokio::time::timeout(Duration::from_secs(60), sys.shutdown())
        .await
        .expect("shutdown");
    assert!(!database_exists(&admin, &name).await);
    assert!(!queue_exists(&url, &q).await);
    admin.close().await;
}
