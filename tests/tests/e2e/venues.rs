//! Fixtures of the door and scope tests: two theaters (each with a screen and a show,
//! made through the admin API by a platform admin), accounts scoped to one of them,
//! and paid bookings with their ticket tokens.

use auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use tests::TestSystem;
use time::format_description::well_known::Rfc3339;

/// One theater with a screen (3 x 4 regular seats) and a show tomorrow.
pub struct Venue {
    pub theater: String,
    pub screen: String,
    pub show: String,
}

pub struct Venues {
    /// A platform admin's token.
    pub platform: String,
    pub movie: String,
    pub a: Venue,
    pub b: Venue,
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

pub async fn create(sys: &TestSystem, token: &str, path: &str, body: Value) -> Value {
    let (status, res) = sys.call(Method::POST, path, Some(token), Some(body)).await;
    assert_eq!(status, 201, "{path}: {res}");
    res
}

pub fn layout() -> Value {
    let seats: Vec<Value> = (1..=4)
        .map(|n| json!({"number": n, "type": "regular"}))
        .collect();
    json!({"rows": [{"row": "A", "seats": seats}, {"row": "B", "seats": seats}, {"row": "C", "seats": seats}]})
}

pub fn prices() -> Value {
    json!([{"seat_type": "regular", "amount": 25000, "currency": "INR"}])
}

/// `hours` from now, whole seconds, RFC 3339.
pub fn in_hours(hours: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::hours(hours))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

async fn venue(sys: &TestSystem, token: &str, name: &str, movie: &str) -> Venue {
    let theater = id(&create(
        sys,
        token,
        "/v1/admin/theaters",
        json!({"name": name, "city": "Pune"}),
    )
    .await);
    let screen = id(&create(
        sys,
        token,
        &format!("/v1/admin/theaters/{theater}/screens"),
        json!({"name": "Screen 1", "layout": layout()}),
    )
    .await);
    let show = id(&create(
        sys,
        token,
        "/v1/admin/shows",
        json!({"movie_id": movie, "screen_id": screen, "starts_at": in_hours(24), "prices": prices()}),
    )
    .await);
    Venue {
        theater,
        screen,
        show,
    }
}

/// Theaters A and B, made by a platform admin.
pub async fn venues(sys: &TestSystem) -> Venues {
    let (_, platform) = sys.user_with_role(Role::Admin).await;
    let movie = id(&create(
        sys,
        &platform,
        "/v1/admin/movies",
        json!({"title": "At The Door", "genres": ["drama"], "duration_min": 100}),
    )
    .await);
    let a = venue(sys, &platform, "Theater A", &movie).await;
    let b = venue(sys, &platform, "Theater B", &movie).await;
    Venues {
        platform,
        movie,
        a,
        b,
    }
}

/// An account of `role` (admin or staff) scoped to `theater` with `bookctl user
/// grant`; returns its email and a token.
pub async fn scoped(sys: &TestSystem, role: Role, theater: &str) -> (String, String) {
    let (user, _) = sys.user_with_role(Role::Customer).await;
    let email: String = sqlx::query_scalar("select email from users where id = $1")
        .bind(user.0)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    bookctl::users::grant(&sys.pool, &email, role, theater.parse().unwrap())
        .await
        .expect("grant");
    (email, sys.tokens.mint(user, role).unwrap())
}

/// A paid, confirmed booking of `seats` on `show` by a new customer; returns the
/// booking id, the customer's token and the ticket token.
pub async fn ticket(sys: &TestSystem, show: &str, seats: &[&str]) -> (String, String, String) {
    let (_, customer) = sys.customer(1).await;
    let (booking, token) = ticket_as(sys, &customer, show, seats).await;
    (booking, customer, token)
}

/// Like [`ticket`], booked by the customer of `customer` (a token).
pub async fn ticket_as(
    sys: &TestSystem,
    customer: &str,
    show: &str,
    seats: &[&str],
) -> (String, String) {
    let body = json!({"show_id": show, "seats": seats, "payment_method": "pm_card_ok"});
    let key = format!("door-{show}-{}", seats.join("-"));
    let (status, accepted) = sys.submit(customer, &key, body).await;
    assert_eq!(status, 202, "{accepted}");
    let booking = accepted["booking_id"].as_str().unwrap().to_owned();
    wait_status(sys, customer, &booking, "confirmed").await;
    let (status, t) = sys
        .call(
            Method::GET,
            &format!("/v1/bookings/{booking}/ticket"),
            Some(customer),
            None,
        )
        .await;
    assert_eq!(status, 200, "{t}");
    let token = t["token"].as_str().unwrap().to_owned();
    (booking, token)
}

pub async fn wait_status(sys: &TestSystem, token: &str, booking: &str, want: &str) -> Value {
    sys.booking_until(token, booking, &format!("became {want}"), |b| {
        b["status"] == want
    })
    .await
}
