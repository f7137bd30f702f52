//! Per-user limits (API.md, Round 2, "Events and venues"): an event's
//! `max_tickets_per_user` caps the seats one user holds or bought in any one of its
//! shows, decided by the sequencer in the show's partition, so parallel requests of
//! one user cannot pass it together; other users are not affected.

use crate::admin::{admin, at};
use serde_json::{Value, json};
use tests::{SystemOptions, spawn_system};

fn decided(b: &Value) -> bool {
    b["status"] != "queued"
}

#[tokio::test]
async fn a_users_tickets_for_a_show_stop_at_the_events_cap_even_when_sent_at_once() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    // A screen of five free seats (admin.rs's layout) and a concert capped at 2.
    let (screen, _) = a.venue().await;
    let concert = a
        .create(
            "/v1/admin/events",
            json!({"kind": "concert", "title": "Capped Live", "max_tickets_per_user": 2}),
        )
        .await;
    let (status, show) = a
        .show(&screen, concert["id"].as_str().unwrap(), &at(48, 0))
        .await;
    assert_eq!(status, 201, "{show}");
    let show = show["id"].as_str().unwrap().to_owned();

    // One buyer: two, then one more is refused, saying the cap and what they have.
    let (_, alice) = sys.customer(1).await;
    let (status, res) = sys
        .submit(&alice, "a-1", json!({"show_id": show, "quantity": 2}))
        .await;
    assert_eq!(status, 202, "{res}");
    let id = res["booking_id"].as_str().unwrap().to_owned();
    let b = sys.booking_until(&alice, &id, "held", decided).await;
    assert_eq!(b["status"], "held", "{b}");
    let (_, res) = sys
        .submit(&alice, "a-2", json!({"show_id": show, "quantity": 1}))
        .await;
    let id = res["booking_id"].as_str().unwrap().to_owned();
    let b = sys.booking_until(&alice, &id, "decided", decided).await;
    assert_eq!(b["status"], "rejected", "{b}");
    assert_eq!(b["reason"], "limit_per_user", "{b}");
    assert_eq!(b["reason_detail"]["limit"], 2, "{b}");
    assert_eq!(b["reason_detail"]["already"], 2, "{b}");

    // Another buyer sends three single-seat requests at once (three seats are
    // free): exactly two are held, the third is refused for the cap.
    let (_, bob) = sys.customer(2).await;
    let sent = futures::future::join_all((0..3).map(|i| {
        let (sys, bob, show) = (&sys, &bob, &show);
        async move {
            sys.submit(
                bob,
                &format!("b-{i}"),
                json!({"show_id": show, "quantity": 1}),
            )
            .await
        }
    }))
    .await;
    let mut statuses = vec![];
    for (status, res) in sent {
        assert_eq!(status, 202, "{res}");
        let id = res["booking_id"].as_str().unwrap().to_owned();
        let b = sys.booking_until(&bob, &id, "decided", decided).await;
        statuses.push((
            b["status"].as_str().unwrap().to_owned(),
            b["reason"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("held".to_owned(), String::new()),
            ("held".to_owned(), String::new()),
            ("rejected".to_owned(), "limit_per_user".to_owned()),
        ],
        "{statuses:?}"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn a_cap_outside_one_to_a_hundred_is_refused() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    for cap in [0, 101, -1] {
        let (status, problem) = a
            .call(
                reqwest::Method::POST,
                "/v1/admin/events",
                Some(json!({"kind": "concert", "title": "Bad cap", "max_tickets_per_user": cap})),
            )
            .await;
        assert_eq!(status, 422, "{cap}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("max_tickets_per_user")
        );
    }
    sys.shutdown().await;
}
