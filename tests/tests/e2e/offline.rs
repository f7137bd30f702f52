//! Offline scanners (API.md, Round 2, "Door"): the manifest verifies tickets with
//! public keys only; uploaded batches resolve duplicates first-scan-wins by
//! `scanned_at`, across batches and online scans, and a batch uploaded twice
//! answers the same and changes nothing.

use crate::venues::{scoped, ticket, venues, wait_status};
use auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tests::{SystemOptions, spawn_system};
use time::format_description::well_known::Rfc3339;

/// `secs` before now, RFC 3339 with milliseconds.
fn ago(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(secs);
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

fn statuses(res: &Value) -> Vec<String> {
    res["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{res}"))
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

fn same_instant(a: &Value, b: &str) -> bool {
    let parse = |s: &str| time::OffsetDateTime::parse(s, &Rfc3339).unwrap();
    parse(a.as_str().unwrap_or_else(|| panic!("{a}"))) == parse(b)
}

#[tokio::test]
async fn the_manifest_lists_valid_bookings_and_public_keys_that_verify_tickets_offline() {
    let sys = spawn_system(SystemOptions::default()).await;
    let v = venues(&sys).await;
    let (b1, _, t1) = ticket(&sys, &v.a.show, &["A1"]).await;
    let (b2, customer, _) = ticket(&sys, &v.a.show, &["A2"]).await;
    sys.post(&customer, &format!("/v1/bookings/{b2}/cancel"), None)
        .await;
    wait_status(&sys, &customer, &b2, "refunded").await;
    let (_, staff) = scoped(&sys, Role::Staff, &v.a.theater).await;
    let (status, m) = sys
        .call(
            Method::GET,
            &format!("/v1/scanner/shows/{}/manifest", v.a.show),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["bookings"].as_array().unwrap().len(), 1, "{m}");
    assert_eq!(m["bookings"][0]["booking_id"], b1.as_str());
    assert_eq!(m["bookings"][0]["seats"], json!(["A1"]));
    assert_eq!(m["revoked"], json!([b2]));
    // Public keys only: the same the public key endpoint serves, 32 bytes each.
    let (_, published) = sys.get("/v1/tickets/keys").await;
    assert_eq!(m["keys"], published["keys"]);
    let text = m.to_string();
    assert!(!text.contains("seed") && !text.contains("secret"), "{text}");
    // A scanner verifies the ticket with them and nothing else.
    let keys: BTreeMap<String, ed25519_dalek::VerifyingKey> = m["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let raw = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                k["public_key"].as_str().unwrap(),
            )
            .unwrap();
            let key = ed25519_dalek::VerifyingKey::from_bytes(&raw.try_into().unwrap()).unwrap();
            (k["kid"].as_str().unwrap().to_owned(), key)
        })
        .collect();
    let claims = tickets::verify(&t1, &keys).expect("verifies offline");
    assert_eq!(claims.bid.to_string(), b1);
    // Another theater's scanner gets nothing.
    let (_, staff_b) = scoped(&sys, Role::Staff, &v.b.theater).await;
    let (status, _) = sys
        .call(
            Method::GET,
            &format!("/v1/scanner/shows/{}/manifest", v.a.show),
            Some(&staff_b),
            None,
        )
        .await;
    assert_eq!(status, 403);
    sys.shutdown().await;
}

#[tokio::test]
async fn an_offline_batch_resolves_duplicates_first_scan_wins_and_is_idempotent() {
    let sys = spawn_system(SystemOptions::default()).await;
    let v = venues(&sys).await;
    let (b1, _, t1) = ticket(&sys, &v.a.show, &["B1"]).await;
    let (b2, _, t2) = ticket(&sys, &v.a.show, &["B2", "B3"]).await;
    let (b3, customer, t3) = ticket(&sys, &v.a.show, &["B4"]).await;
    sys.post(&customer, &format!("/v1/bookings/{b3}/cancel"), None)
        .await;
    wait_status(&sys, &customer, &b3, "refunded").await;
    let (_, staff) = scoped(&sys, Role::Staff, &v.a.theater).await;
    let (t1_late, t1_early, t2_at) = (ago(300), ago(600), ago(400));
    let batch = json!({"checkins": [
        {"token": t1, "gate": "East", "scanned_at": t1_late},
        {"token": t1, "gate": "West", "scanned_at": t1_early},
        {"token": t2, "gate": "East", "scanned_at": t2_at},
        {"token": t3, "gate": "East", "scanned_at": ago(350)},
        {"token": "forged.ticket", "gate": "East", "scanned_at": ago(340)},
        {"token": t2, "gate": "East", "scanned_at": ago(-3600)},
    ]});
    let (status, first) = sys
        .post(&staff, "/v1/checkins/batch", Some(batch.clone()))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        statuses(&first),
        [
            "duplicate",
            "accepted",
            "accepted",
            "invalid",
            "invalid",
            "invalid"
        ]
    );
    let r = &first["results"];
    // The earlier scan of t1 won although it came second in the batch.
    assert_eq!(r[0]["booking_id"], b1.as_str());
    assert_eq!(r[0]["first_scan"]["gate"], "West");
    assert!(
        same_instant(&r[0]["first_scan"]["scanned_at"], &t1_early),
        "{r}"
    );
    assert_eq!(r[1]["first_scan"], r[0]["first_scan"]);
    assert_eq!(r[2]["booking_id"], b2.as_str());
    assert!(
        r[3]["reason"] == "booking_cancelled" || r[3]["reason"] == "booking_refunded",
        "{r}"
    );
    assert_eq!(r[4]["reason"], "malformed");
    assert_eq!(r[5]["reason"], "scanned_in_future");

    // Uploaded again: the same answers, the same rows.
    let rows = || async {
        sqlx::query_as::<_, (uuid::Uuid, time::OffsetDateTime, Option<String>)>(
            "select booking_id, checked_in_at, gate from checkins order by booking_id",
        )
        .fetch_all(&sys.pool)
        .await
        .unwrap()
    };
    let before = rows().await;
    assert_eq!(before.len(), 2);
    let (status, again) = sys
        .post(&staff, "/v1/checkins/batch", Some(batch.clone()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again, first);
    assert_eq!(rows().await, before);

    // Online, t1 is already in: at the batch's first scan.
    let (status, res) = sys
        .post(&staff, "/v1/checkins", Some(json!({"token": t1})))
        .await;
    assert_eq!(status, 409, "{res}");
    assert_eq!(res["gate"], "West");

    // Another scanner uploads later a scan of t2 made earlier: it becomes the first.
    let t2_earlier = ago(500);
    let other = json!({"checkins": [{"token": t2, "gate": "North", "scanned_at": t2_earlier}]});
    let (_, res) = sys.post(&staff, "/v1/checkins/batch", Some(other)).await;
    assert_eq!(statuses(&res), ["accepted"]);
    let (_, res) = sys.post(&staff, "/v1/checkins/batch", Some(batch)).await;
    assert_eq!(res["results"][2]["status"], "duplicate");
    assert_eq!(res["results"][2]["first_scan"]["gate"], "North");
    let (_, list) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/shows/{}/checkins", v.a.show),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(list["checked_in"], 2, "{list}");
    assert_eq!(list["items"][0]["booking_id"], b1.as_str(), "oldest first");
    assert_eq!(list["items"][1]["source"], "offline");
    sys.shutdown().await;
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole() {
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let (_, op) = sys.user_with_role(Role::Operator).await;
    let scans: Vec<Value> = (0..=sys.settings.door.batch_items_max)
        .map(|_| json!({"token": "x.y", "scanned_at": ago(1)}))
        .collect();
    let (status, res) = sys
        .post(&op, "/v1/checkins/batch", Some(json!({"checkins": scans})))
        .await;
    assert_eq!(status, 422, "{res}");
    sys.shutdown().await;
}
