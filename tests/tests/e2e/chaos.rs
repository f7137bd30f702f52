//! Chaos: a thousand bookings over a few shows with declines, gateway errors and
//! timeouts, duplicated and reordered webhooks, and hold expiries racing payments.
//! At the end every booking is final and money and seats agree.

use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};
use tests::{SystemOptions, spawn_system};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_hostile_bookings_end_final_and_reconciled() {
    let base = SystemOptions::default();
    let opts = SystemOptions {
        // Holds short enough that expiry races slow payments.
        hold_ttl_secs: 2,
        expiry_sweep_ms: 100,
        gateway: local_gateway::LocalGatewayConfig {
            duplicate_webhooks: 0.3,
            reorder_webhooks_ms: 150,
            slow_delay_ms: 2000,
            hang_ms: 700,
            seed: Some(20261124),
            ..base.gateway.clone()
        },
        ..base
    };
    let sys = spawn_system(opts).await;
    let mut shows = vec![];
    for _ in 0..4 {
        shows.push(sys.show(8, 10).await);
    }
    let mut users = vec![];
    for i in 0..20 {
        users.push(sys.customer(i).await.1);
    }
    // A fixed mix (by index, so every run has the same shares): 20% declines,
    // 10% gateway errors, 5% timeouts, 5% slow payments racing the hold, 10%
    // holds nobody pays, the rest good cards.
    let method = |i: usize| match i % 20 {
        0..=3 => Some("pm_card_declined"),
        4 | 5 => Some("pm_card_error"),
        6 => Some("pm_card_timeout"),
        7 => Some("pm_card_slow"),
        8 | 9 => None,
        _ => Some("pm_card_ok"),
    };
    let started = Instant::now();
    let results: Vec<(u16, serde_json::Value)> = futures::stream::iter(0..1000usize)
        .map(|i| {
            let sys = &sys;
            let token = users[i % users.len()].clone();
            let show = shows[i % shows.len()];
            let mut body = if i % 3 == 0 {
                json!({"show_id": show.to_string(), "quantity": 1 + i % 2})
            } else {
                let row = (b'A' + ((i / 7) % 8) as u8) as char;
                json!({"show_id": show.to_string(), "seats": [format!("{row}{}", 1 + (i * 3) % 10)]})
            };
            if let Some(m) = method(i) {
                body["payment_method"] = json!(m);
            }
            async move { sys.submit(&token, &format!("chaos-{i}"), body).await }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let ids: Vec<uuid::Uuid> = results
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 202, "{b}");
            b["booking_id"].as_str().unwrap().parse().unwrap()
        })
        .collect();

    // Every booking ends final: no hold, no pending payment, no refund in flight.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let open: i64 = sqlx::query_scalar(
            "select (select count(*) from unnest($1::uuid[]) i where not exists
                        (select 1 from bookings b where b.id = i
                          and b.status in ('confirmed', 'rejected', 'expired', 'failed', 'refunded')))
                  + (select count(*) from payments where status in ('creating', 'pending')
                        or refund_status = 'requested')",
        )
        .bind(&ids)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} bookings or payments still open after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report = ops::reconcile::reconcile(&sys.pool).await.unwrap();
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!(report.bookings, 1000);

    let by_status: Vec<(String, i64)> =
        sqlx::query_as("select status, count(*) from bookings group by 1 order by 1")
            .fetch_all(&sys.pool)
            .await
            .unwrap();
    println!("chaos outcome after {:?}: {by_status:?}", started.elapsed());
    let count = |s: &str| {
        by_status
            .iter()
            .find(|(k, _)| k == s)
            .map_or(0, |(_, n)| *n)
    };
    assert!(count("confirmed") > 0 && count("failed") > 0 && count("rejected") > 0);
    assert!(count("expired") > 0, "unpaid holds expired");
    sys.shutdown().await;
}
