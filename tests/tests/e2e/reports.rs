//! Sales reports (API.md, Round 2, "Theater staff"): tickets, revenue, fees kept,
//! refunds and occupancy of a period's shows, grouped, as JSON or CSV, within the
//! caller's scope.

use crate::venues::{in_hours, scoped, ticket, venues, wait_status};
use auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use tests::{SystemOptions, spawn_system};

fn day(hours: i64) -> String {
    in_hours(hours)[..10].to_owned()
}

#[tokio::test]
async fn a_report_counts_tickets_money_and_occupancy_by_theater_within_scope() {
    let sys = spawn_system(SystemOptions::default()).await;
    let v = venues(&sys).await;
    // Theater A: two seats sold and kept, one booking cancelled (fee kept, rest refunded).
    ticket(&sys, &v.a.show, &["A1", "A2"]).await;
    let (cancelled, customer, _) = ticket(&sys, &v.a.show, &["B1"]).await;
    sys.post(&customer, &format!("/v1/bookings/{cancelled}/cancel"), None)
        .await;
    wait_status(&sys, &customer, &cancelled, "refunded").await;
    // Theater B: one seat, paid at the second attempt (a declined card first): two
    // payment rows, one ticket.
    let (_, buyer) = sys.customer(1).await;
    let body = json!({"show_id": v.b.show, "seats": ["C4"], "payment_method": "pm_card_declined"});
    let (status, accepted) = sys.submit(&buyer, "report-two-attempts", body).await;
    assert_eq!(status, 202, "{accepted}");
    let twice = accepted["booking_id"].as_str().unwrap().to_owned();
    // Declined (held again, its attempt failed), not merely held before the attempt.
    sys.wait_declined(&buyer, &twice).await;
    let pay = json!({"payment_method": "pm_card_ok"});
    let (status, body) = sys
        .post(&buyer, &format!("/v1/bookings/{twice}/payment"), Some(pay))
        .await;
    assert_eq!(status, 202, "the second attempt: {body}");
    // Seen once in CI under load: the second attempt never started (the booking
    // stayed held with one failed attempt). Should it happen again, the payment rows
    // say how far it got.
    let confirmed = tests::poll(tests::BOOKING_WAIT, tests::POLL, || async {
        let (_, b) = sys.booking(&buyer, &twice).await;
        if b["status"] == "confirmed" {
            Ok(b)
        } else {
            Err(b)
        }
    })
    .await;
    let paid = match confirmed {
        Ok(b) => b,
        Err(last) => {
            let rows: Vec<(i32, String, String, Option<String>)> = sqlx::query_as(
                "select attempt, status, method, payment_id from payments where booking_id = $1::uuid order by attempt",
            )
            .bind(&twice)
            .fetch_all(&sys.pool)
            .await
            .unwrap();
            panic!("booking {twice} never confirmed; last seen {last}; its payments {rows:?}");
        }
    };

    let q = format!("from={}&to={}", day(-24), day(72));
    let (status, r) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/reports/sales?{q}&group_by=theater"),
            Some(&v.platform),
            None,
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{r}");
    let row = |t: &str| {
        items
            .iter()
            .find(|i| i["key"] == t)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let a = row(&v.a.theater);
    assert_eq!(a["tickets"], 2, "{a}");
    let (fees, refunds) = (
        a["fees_kept"].as_i64().unwrap(),
        a["refunds"].as_i64().unwrap(),
    );
    assert_eq!(
        fees + refunds,
        25_000,
        "the cancelled seat's price is kept or refunded: {a}"
    );
    assert!(refunds > 0, "{a}");
    assert_eq!(a["revenue"].as_i64().unwrap(), 2 * 25_000 + fees);
    assert_eq!(a["occupancy"], 0.1667, "2 of 12 seats");
    let b = row(&v.b.theater);
    assert_eq!(b["tickets"], 1, "{b}");
    assert_eq!(b["revenue"], paid["amount"], "{b}");

    // A scoped admin of B sees only B, and is refused A by name.
    let (_, admin_b) = scoped(&sys, Role::Admin, &v.b.theater).await;
    let (_, r) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/reports/sales?{q}&group_by=show"),
            Some(&admin_b),
            None,
        )
        .await;
    assert_eq!(r["items"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["items"][0]["key"], v.b.show.as_str());
    let (status, _) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/reports/sales?{q}&theater_id={}", v.a.theater),
            Some(&admin_b),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // CSV by day: a header and one line for the shows' day.
    let res = sys
        .http
        .get(sys.url(&format!("/v1/admin/reports/sales?{q}&group_by=day")))
        .bearer_auth(&v.platform)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "key,tickets,revenue,fees_kept,refunds,occupancy");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with(&format!("{},3,", day(24))), "{csv}");
    sys.shutdown().await;
}
