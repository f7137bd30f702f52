//! Staff's booking lookup (API.md, Round 2, "Theater staff"): by booking id, email
//! or phone, only within the caller's theaters.

use crate::venues::{scoped, ticket_as, venues};
use auth::Role;
use reqwest::Method;
use serde_json::Value;
use tests::{SystemOptions, TestSystem, spawn_system};

async fn lookup(sys: &TestSystem, token: &str, q: &str) -> (u16, Vec<String>) {
    let url = format!(
        "/v1/admin/bookings?q={}",
        q.replace('+', "%2B").replace(' ', "%20")
    );
    let (status, page) = sys.call(Method::GET, &url, Some(token), None).await;
    let ids = page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["booking_id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (status, ids)
}

#[tokio::test]
async fn staff_find_bookings_by_id_email_or_phone_only_at_their_theaters() {
    let sys = spawn_system(SystemOptions::default()).await;
    let v = venues(&sys).await;
    let (user, customer) = sys.customer(7).await;
    let email: String = sqlx::query_scalar(
        "update users set phone = '+91 98765-43210' where id = $1 returning email",
    )
    .bind(user.0)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    let (in_a, _) = ticket_as(&sys, &customer, &v.a.show, &["A1"]).await;
    let (in_b, _) = ticket_as(&sys, &customer, &v.b.show, &["A1"]).await;
    let (_, staff_a) = scoped(&sys, Role::Staff, &v.a.theater).await;

    for q in [
        email.to_uppercase(),
        "+919876543210".to_owned(),
        "+91 98765 43210".to_owned(),
    ] {
        let (status, ids) = lookup(&sys, &staff_a, &q).await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(ids, vec![in_a.clone()], "{q}: only theater A's booking");
    }
    assert_eq!(lookup(&sys, &staff_a, &in_a).await.1, vec![in_a.clone()]);
    // B's booking, by its very id: not even its existence shows.
    assert_eq!(lookup(&sys, &staff_a, &in_b).await, (200, vec![]));
    // A platform admin finds both, newest first, with the customer and check-in.
    let (status, page) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/bookings?q={email}"),
            Some(&v.platform),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let items: &Vec<Value> = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["booking_id"], in_b.as_str());
    assert_eq!(items[0]["customer"]["email"], email.as_str());
    assert_eq!(items[0]["checked_in_at"], Value::Null);
    // Customers may not look bookings up; a query that is none of the three is a 422.
    assert_eq!(lookup(&sys, &customer, &email).await.0, 403);
    assert_eq!(lookup(&sys, &staff_a, "xy").await.0, 422);
    sys.shutdown().await;
}
