//! Retention: the bookkeeping tables that only deduplicate, authenticate or record
//! acceptance are swept of old rows and keep recent ones.

use tests::{SystemOptions, spawn_system};

#[tokio::test]
async fn retention_forgets_old_inbox_webhook_token_and_acceptance_rows_and_keeps_recent_ones() {
    // No workers: their own retention sweep runs at start and could take the old rows
    // between the inserts below and the sweep this test calls.
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let (user, _) = sys.customer(1).await;
    for (age_days, tag) in [(40, "old"), (1, "new")] {
        sqlx::query(
            "insert into processed_messages (message_id, partition, processed_at)
             values ($1, 0, now() - make_interval(days => $2))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(age_days)
        .execute(&sys.pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into payment_webhooks (event_id, type, payment_id, booking_id, payload, received_at)
             values ($1, 'payment.succeeded', 'pi_x', gen_random_uuid(), '{}', now() - make_interval(days => $2))",
        )
        .bind(format!("evt_{tag}"))
        .bind(age_days)
        .execute(&sys.pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into accepted_bookings (booking_id, user_id, show_id, seats, accepted_at)
             values (gen_random_uuid(), $1, gen_random_uuid(), '{}', now() - make_interval(days => $2))",
        )
        .bind(user.0)
        .bind(age_days)
        .execute(&sys.pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at)
             values ($1, $2, $1, $3, now() + make_interval(days => $4))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(user.0)
        .bind(tag.as_bytes())
        .bind(if tag == "old" { -3 } else { 3 })
        .execute(&sys.pool)
        .await
        .unwrap();
    }
    let swept = workers::retention::sweep(&sys.pool, 30).await.unwrap();
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
                .fetch_one(&sys.pool)
                .await
                .unwrap();
        assert_eq!(left, 1, "{table} keeps its recent row");
    }
    assert_eq!(
        workers::retention::sweep(&sys.pool, 30).await.unwrap(),
        workers::retention::Swept::default()
    );
    sys.shutdown().await;
}
