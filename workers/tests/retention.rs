//! Retention: the bookkeeping tables that only deduplicate, authenticate or record
//! acceptance are swept of old rows and keep recent ones.

/// A fresh, migrated database of its own: (pool, server URL, database name).
async fn fresh_database() -> (sqlx::PgPool, String, String) {
    let settings = platform::Settings::load_for(platform::settings::AppEnv::Development).unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("test_ret_{}", &id[..12]);
    let base = settings.database.url.rsplit_once('/').unwrap().0.to_owned();
    let url = format!("{base}/{name}");
    platform::db::migrate(&url)
        .await
        .expect("PostgreSQL must be reachable (DATABASE_URL)");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    (pool, base, name)
}

// The sweep is called straight (no workers process runs here, so nothing else
// sweeps between the inserts and the call).
#[tokio::test]
async fn retention_forgets_old_inbox_webhook_token_and_acceptance_rows_and_keeps_recent_ones() {
    let (pool, base, db) = fresh_database().await;
    let user = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into users (id, email, password_hash, name, role) values ($1, $2, 'x', 'Test', 'customer')",
    )
    .bind(user)
    .bind(format!("retention-{user}@test.local"))
    .execute(&pool)
    .await
    .unwrap();
    for (age_days, tag) in [(40, "old"), (1, "new")] {
        sqlx::query(
            "insert into processed_messages (message_id, partition, processed_at)
             values ($1, 0, now() - make_interval(days => $2))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(age_days)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into payment_webhooks (event_id, type, payment_id, booking_id, payload, received_at)
             values ($1, 'payment.succeeded', 'pi_x', gen_random_uuid(), '{}', now() - make_interval(days => $2))",
        )
        .bind(format!("evt_{tag}"))
        .bind(age_days)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into accepted_bookings (booking_id, user_id, show_id, seats, accepted_at)
             values (gen_random_uuid(), $1, gen_random_uuid(), '{}', now() - make_interval(days => $2))",
        )
        .bind(user)
        .bind(age_days)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at)
             values ($1, $2, $1, $3, now() + make_interval(days => $4))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(user)
        .bind(tag.as_bytes())
        .bind(if tag == "old" { -3 } else { 3 })
        .execute(&pool)
        .await
        .unwrap();
    }
    let swept = workers::retention::sweep(&pool, 30).await.unwrap();
    assert_eq!(
        swept,
        workers::retention::Swept {
            processed_messages: 1,
            payment_webhooks: 1,
            refresh_tokens: 1,
            accepted_bookings: 1,
        }
    );
    for table in [
        "processed_messages",
        "payment_webhooks",
        "refresh_tokens",
        "accepted_bookings",
    ] {
        let left: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(left, 1, "{table} keeps its recent row");
    }
    assert_eq!(
        workers::retention::sweep(&pool, 30).await.unwrap(),
        workers::retention::Swept::default()
    );
    pool.close().await;
    let admin = sqlx::PgPool::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "drop database if exists \"{db}\" with (force)"
    )))
    .execute(&admin)
    .await
    .unwrap();
}
