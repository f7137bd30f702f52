//! At the door (API.md, Round 2, "Door"): a ticket checks in once (also under
//! concurrent scans), a cancelled or forged ticket is refused, the check-in list
//! counts, an offline scanner's manifest holds no secret and its batches resolve
//! duplicates first-scan-wins, idempotently; staff look bookings up only at their
//! theaters.

use crate::venues::{Venues, scoped, ticket, venues, wait_status};
use auth::Role;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use tests::{SystemOptions, TestSystem, spawn_system};

async fn check_in(sys: &TestSystem, staff: &str, token: &str, gate: Option<&str>) -> (u16, Value) {
    sys.post(
        staff,
        "/v1/checkins",
        Some(json!({"token": token, "gate": gate})),
    )
    .await
}

async fn setup() -> (TestSystem, Venues) {
    let sys = spawn_system(SystemOptions::default()).await;
    let v = venues(&sys).await;
    (sys, v)
}

#[tokio::test]
async fn a_ticket_checks_in_once_then_answers_409_with_the_first_scan() {
    let (sys, v) = setup().await;
    let (booking, customer, token) = ticket(&sys, &v.a.show, &["A1", "A2"]).await;
    let (_, staff) = scoped(&sys, Role::Staff, &v.a.theater).await;
    let (status, first) = check_in(&sys, &staff, &token, Some("North 2")).await;
    assert_eq!(status, 201, "{first}");
    // A used ticket can no longer be cancelled (and refunded).
    let (status, res) = sys
        .post(&customer, &format!("/v1/bookings/{booking}/cancel"), None)
        .await;
    assert_eq!(status, 409, "{res}");
    assert!(
        res["detail"].as_str().unwrap().contains("checked in"),
        "{res}"
    );
    assert_eq!(first["booking_id"], booking.as_str());
    assert_eq!(first["show_id"], v.a.show.as_str());
    assert_eq!(first["seats"], json!(["A1", "A2"]));
    assert_eq!(first["gate"], "North 2");
    let (status, again) = check_in(&sys, &staff, &token, Some("South")).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["code"], "already_checked_in");
    assert_eq!(again["checked_in_at"], first["checked_in_at"]);
    assert_eq!(again["gate"], "North 2");
    // The list counts it: one of one booking, two of two seats.
    let (status, list) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/shows/{}/checkins", v.a.show),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        (list["checked_in"].as_i64(), list["total"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(list["checked_in_seats"], 2);
    assert_eq!(list["items"][0]["booking_id"], booking.as_str());
    assert_eq!(list["items"][0]["source"], "online");
    sys.shutdown().await;
}

#[tokio::test]
async fn of_many_concurrent_scans_of_one_ticket_exactly_one_checks_in() {
    let (sys, v) = setup().await;
    let (booking, _, token) = ticket(&sys, &v.a.show, &["B1"]).await;
    let (_, op) = sys.user_with_role(Role::Operator).await;
    let scans = (0..16).map(|i| {
        let (sys, op, token) = (&sys, &op, &token);
        async move { check_in(sys, op, token, Some(&format!("gate {i}"))).await }
    });
    let answers = futures::future::join_all(scans).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let winner_gate = created[0]["gate"].clone();
    for (status, body) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["gate"], winner_gate, "every loser names the winner");
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from checkins where booking_id = $1")
        .bind(booking.parse::<uuid::Uuid>().unwrap())
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_ticket_and_a_forged_one_are_refused_at_the_door() {
    let (sys, v) = setup().await;
    let (booking, customer, token) = ticket(&sys, &v.a.show, &["C1"]).await;
    let (status, _) = sys
        .post(&customer, &format!("/v1/bookings/{booking}/cancel"), None)
        .await;
    assert_eq!(status, 202);
    wait_status(&sys, &customer, &booking, "refunded").await;
    let (_, staff) = scoped(&sys, Role::Staff, &v.a.theater).await;
    let (status, res) = check_in(&sys, &staff, &token, None).await;
    assert_eq!(status, 422, "{res}");
    assert_eq!(res["code"], "ticket_not_valid");
    assert!(
        res["reason"] == "booking_cancelled" || res["reason"] == "booking_refunded",
        "{res}"
    );

    // A forged ticket: the claims of a real one with other seats, the signature kept.
    let (_, _, good) = ticket(&sys, &v.a.show, &["C2"]).await;
    let (payload, sig) = good.split_once('.').unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["seats"] = json!(["C2", "C3", "C4"]);
    let forged = format!(
        "{}.{sig}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    for bad in [forged.as_str(), "not-a-ticket"] {
        let (status, res) = check_in(&sys, &staff, bad, None).await;
        assert_eq!(status, 422, "{res}");
        assert_eq!(res["code"], "ticket_not_valid");
    }
    let n: i64 = sqlx::query_scalar("select count(*) from checkins")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing refused was recorded");
    sys.shutdown().await;
}

#[tokio::test]
async fn door_staff_of_another_theater_and_customers_are_refused() {
    let (sys, v) = setup().await;
    let (_, customer, token) = ticket(&sys, &v.a.show, &["A3"]).await;
    let (_, staff_b) = scoped(&sys, Role::Staff, &v.b.theater).await;
    let (status, _) = check_in(&sys, &staff_b, &token, None).await;
    assert_eq!(status, 403);
    let (status, _) = check_in(&sys, &customer, &token, None).await;
    assert_eq!(status, 403);
    // A scoped admin of A checks it in.
    let (_, admin_a) = scoped(&sys, Role::Admin, &v.a.theater).await;
    let (status, _) = check_in(&sys, &admin_a, &token, None).await;
    assert_eq!(status, 201);
    sys.shutdown().await;
}
