//! The admin API: theaters, screens, movies, shows and sales (API.md, "Admin").

use auth::Role;
use contracts::BookingStatus;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};
use time::format_description::well_known::Rfc3339;

/// A 2 x 3 layout: row A regular (A3 blocked), row B premium.
fn layout() -> Value {
    json!({"rows": [
        {"row": "A", "seats": [{"number": 1, "type": "regular"}, {"number": 2, "type": "regular"}, {"number": 3, "type": "regular", "blocked": true}]},
        {"row": "B", "seats": [{"number": 1, "type": "premium"}, {"number": 2, "type": "premium"}, {"number": 3, "type": "premium"}]}
    ]})
}

pub(crate) fn prices() -> Value {
    json!([
        {"seat_type": "regular", "amount": 20000, "currency": "INR"},
        {"seat_type": "premium", "amount": 35000, "currency": "INR"}
    ])
}

pub(crate) fn at(hours_from_now: i64, minutes: i64) -> String {
    (time::OffsetDateTime::now_utc()
        + time::Duration::hours(hours_from_now)
        + time::Duration::minutes(minutes))
    .replace_nanosecond(0)
    .unwrap()
    .format(&Rfc3339)
    .unwrap()
}

pub(crate) struct Admin<'a> {
    pub(crate) sys: &'a TestSystem,
    token: String,
}

impl Admin<'_> {
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.sys.call(method, path, Some(&self.token), body).await
    }

    pub(crate) async fn create(&self, path: &str, body: Value) -> Value {
        let (status, res) = self.call(Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {res}");
        res
    }

    /// A theater with one screen of [`layout`] and a 120-minute movie.
    pub(crate) async fn venue(&self) -> (String, String) {
        let theater = self
            .create(
                "/v1/admin/theaters",
                json!({"name": "PVR Phoenix", "city": "Mumbai"}),
            )
            .await;
        let screen = self
            .create(
                &format!(
                    "/v1/admin/theaters/{}/screens",
                    theater["id"].as_str().unwrap()
                ),
                json!({"name": "Screen 1", "layout": layout()}),
            )
            .await;
        let movie = self
            .create(
                "/v1/admin/movies",
                json!({"title": "Scheduled", "genres": ["drama"], "cast": ["A. Actor"], "duration_min": 120}),
            )
            .await;
        (
            screen["id"].as_str().unwrap().to_owned(),
            movie["id"].as_str().unwrap().to_owned(),
        )
    }

    pub(crate) async fn show(&self, screen: &str, movie: &str, starts_at: &str) -> (u16, Value) {
        self.call(
            Method::POST,
            "/v1/admin/shows",
            Some(json!({"movie_id": movie, "screen_id": screen, "starts_at": starts_at, "prices": prices()})),
        )
        .await
    }
}

pub(crate) async fn admin(sys: &TestSystem) -> Admin<'_> {
    let (_, token) = sys.user_with_role(Role::Admin).await;
    Admin { sys, token }
}

#[tokio::test]
async fn only_admins_may_use_it() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, customer) = sys.customer(1).await;
    let (_, operator) = sys.user_with_role(Role::Operator).await;
    let body = json!({"name": "T", "city": "Pune"});
    let (status, _) = sys
        .call(Method::POST, "/v1/admin/theaters", None, Some(body.clone()))
        .await;
    assert_eq!(status, 401);
    for token in [&customer, &operator] {
        let (status, res) = sys
            .call(
                Method::POST,
                "/v1/admin/theaters",
                Some(token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 403, "{res}");
        assert_eq!(res["code"], "forbidden");
    }
    let n: i64 = sqlx::query_scalar("select count(*) from theaters")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    sys.shutdown().await;
}

#[tokio::test]
async fn theaters_screens_and_movies_are_created_validated_and_listed() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let theater = a
        .create(
            "/v1/admin/theaters",
            json!({"name": " INOX ", "city": "Pune", "address": "FC Road"}),
        )
        .await;
    assert_eq!(theater["name"], "INOX");
    let tid = theater["id"].as_str().unwrap();
    let (status, changed) = a
        .call(
            Method::PATCH,
            &format!("/v1/admin/theaters/{tid}"),
            Some(json!({"address": "JM Road"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["address"], "JM Road");
    assert_eq!(changed["name"], "INOX");

    let screen = a
        .create(
            &format!("/v1/admin/theaters/{tid}/screens"),
            json!({"name": "Audi 1", "layout": layout()}),
        )
        .await;
    assert_eq!(screen["seat_count"], 6);
    let (status, dup) = a
        .call(
            Method::POST,
            &format!("/v1/admin/theaters/{tid}/screens"),
            Some(json!({"name": "Audi 1", "layout": layout()})),
        )
        .await;
    assert_eq!(status, 409, "{dup}");
    let duplicate_seat = json!({"rows": [{"row": "A", "seats": [{"number": 1, "type": "regular"}, {"number": 1, "type": "regular"}]}]});
    for bad in [
        json!({"name": "Audi 2", "layout": duplicate_seat}),
        json!({"name": "Audi 2", "layout": {"rows": []}}),
        json!({"name": "", "layout": layout()}),
        json!({"name": "Audi 2", "layout": layout(), "capacity": 6}),
    ] {
        let (status, res) = a
            .call(
                Method::POST,
                &format!("/v1/admin/theaters/{tid}/screens"),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 422, "{bad}: {res}");
    }
    let unknown = uuid::Uuid::now_v7();
    let (status, _) = a
        .call(
            Method::POST,
            &format!("/v1/admin/theaters/{unknown}/screens"),
            Some(json!({"name": "X", "layout": layout()})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, screens) = a
        .call(
            Method::GET,
            &format!("/v1/admin/theaters/{tid}/screens"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(screens.as_array().unwrap().len(), 1);

    let movie = a
        .create(
            "/v1/admin/movies",
            json!({"title": "Admin Movie", "genres": ["comedy"], "cast": ["Some One"], "duration_min": 95}),
        )
        .await;
    assert_eq!(movie["cast"], json!(["Some One"]));
    for bad in [
        json!({"title": "X", "duration_min": 0}),
        json!({"title": "", "duration_min": 90}),
        json!({"title": "X", "duration_min": 90, "genres": (0..60).map(|i| format!("g{i}")).collect::<Vec<_>>()}),
    ] {
        let (status, res) = a
            .call(Method::POST, "/v1/admin/movies", Some(bad.clone()))
            .await;
        assert_eq!(status, 422, "{bad}: {res}");
    }
    for path in [
        format!("/v1/admin/theaters/{unknown}"),
        format!("/v1/admin/screens/{unknown}"),
        format!("/v1/admin/movies/{unknown}"),
        format!("/v1/admin/shows/{unknown}"),
        "/v1/admin/theaters/not-a-uuid".to_owned(),
    ] {
        assert_eq!(a.call(Method::GET, &path, None).await.0, 404, "{path}");
    }
    sys.shutdown().await;
}

#[tokio::test]
async fn overlapping_shows_are_refused_including_the_cleaning_buffer() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let (screen, movie) = a.venue().await;
    // 120-minute movie + 15-minute buffer: the screen is busy 135 minutes.
    let (status, first) = a.show(&screen, &movie, &at(24, 0)).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["on_sale"], true);
    assert_eq!(first["prices"].as_array().unwrap().len(), 2);

    let (status, res) = a.show(&screen, &movie, &at(24, 60)).await;
    assert_eq!(status, 409, "inside the film: {res}");
    assert!(
        res["detail"]
            .as_str()
            .unwrap()
            .contains(first["id"].as_str().unwrap())
    );
    let (status, res) = a.show(&screen, &movie, &at(24, 125)).await;
    assert_eq!(status, 409, "only the cleaning buffer overlaps: {res}");
    let (status, res) = a.show(&screen, &movie, &at(24, -130)).await;
    assert_eq!(status, 409, "ends inside the next one's start: {res}");
    let (status, res) = a.show(&screen, &movie, &at(24, 135)).await;
    assert_eq!(status, 201, "right after the buffer: {res}");

    // A cancelled show frees its slot.
    let blocker = at(48, 0);
    let (_, cancelled) = a.show(&screen, &movie, &blocker).await;
    sqlx::query("update shows set status = 'cancelled' where id = $1")
        .bind(
            cancelled["id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        )
        .execute(&sys.pool)
        .await
        .unwrap();
    assert_eq!(a.show(&screen, &movie, &blocker).await.0, 201);

    // Input checks.
    let (status, res) = a.show(&screen, &movie, &at(-1, 0)).await;
    assert_eq!(status, 422, "in the past: {res}");
    assert_eq!(a.show(&screen, &movie, "tomorrow").await.0, 422);
    let (status, res) = a
        .call(
            Method::POST,
            "/v1/admin/shows",
            Some(
                json!({"movie_id": movie, "screen_id": screen, "starts_at": at(72, 0),
                         "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}]}),
            ),
        )
        .await;
    assert_eq!(status, 422, "premium unpriced: {res}");
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(a.show(&unknown, &movie, &at(72, 0)).await.0, 404);
    assert_eq!(a.show(&screen, &unknown, &at(72, 0)).await.0, 404);

    let (status, list) = a
        .call(
            Method::GET,
            &format!("/v1/admin/shows?screen_id={screen}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 4);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_booked_show_freezes_its_layout_time_and_prices_and_sales_add_up() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let (screen, movie) = a.venue().await;
    let (_, show) = a.show(&screen, &movie, &at(30, 0)).await;
    let show_id = show["id"].as_str().unwrap().to_owned();

    // Before any booking: the layout, time and prices may change.
    let (status, res) = a
        .call(
            Method::PUT,
            &format!("/v1/admin/screens/{screen}/layout"),
            Some(json!({"layout": layout()})),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    let (status, res) = a
        .call(
            Method::PATCH,
            &format!("/v1/admin/shows/{show_id}"),
            Some(json!({"starts_at": at(31, 0)})),
        )
        .await;
    assert_eq!(status, 200, "{res}");

    // An admin-created show takes bookings: one paid, one only held.
    let (_, token) = sys.customer(1).await;
    let (status, paid) = sys
        .submit(
            &token,
            "paid",
            json!({"show_id": show_id, "seats": ["B1", "B2"], "payment_method": "pm_card_ok"}),
        )
        .await;
    assert_eq!(status, 202, "{paid}");
    let (status, held) = sys
        .submit(&token, "held", json!({"show_id": show_id, "seats": ["A1"]}))
        .await;
    assert_eq!(status, 202, "{held}");
    let paid_id = paid["booking_id"].as_str().unwrap().to_owned();
    sys.eventually(
        Duration::from_secs(30),
        "the paid booking is confirmed",
        || async { sys.booking(&token, &paid_id).await.1["status"] == "confirmed" },
    )
    .await;
    let held_id: uuid::Uuid = held["booking_id"].as_str().unwrap().parse().unwrap();
    sys.wait_decided(&[held_id], Duration::from_secs(30)).await;
    assert_eq!(
        sys.booking(&token, &held_id.to_string()).await.1["status"],
        serde_json::to_value(BookingStatus::Held).unwrap()
    );

    let (status, res) = a
        .call(
            Method::PUT,
            &format!("/v1/admin/screens/{screen}/layout"),
            Some(json!({"layout": {"rows": [{"row": "A", "seats": [{"number": 1, "type": "regular"}]}]}})),
        )
        .await;
    assert_eq!(status, 409, "{res}");
    for change in [json!({"starts_at": at(40, 0)}), json!({"prices": prices()})] {
        let (status, res) = a
            .call(
                Method::PATCH,
                &format!("/v1/admin/shows/{show_id}"),
                Some(change),
            )
            .await;
        assert_eq!(status, 409, "{res}");
    }

    let (status, sales) = a
        .call(
            Method::GET,
            &format!("/v1/admin/shows/{show_id}/sales"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{sales}");
    assert_eq!(sales["capacity"], 6);
    assert_eq!(sales["sold"], 2);
    assert_eq!(sales["held"], 1);
    assert_eq!(sales["blocked"], 1);
    assert_eq!(sales["free"], 2);
    assert_eq!(
        sales["revenue"],
        json!({"amount": 70000, "currency": "INR"})
    );
    let types: HashSet<String> = sales["by_seat_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}:{}/{}", t["seat_type"], t["sold"], t["held"]))
        .collect();
    assert_eq!(
        types,
        HashSet::from(["\"premium\":2/0".to_owned(), "\"regular\":0/1".to_owned()])
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn theater_pages_stay_stable_while_theaters_are_added() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let mut originals = vec![];
    for i in 0..5 {
        let t = a
            .create(
                "/v1/admin/theaters",
                json!({"name": format!("T{i}"), "city": "Delhi"}),
            )
            .await;
        originals.push(t["id"].as_str().unwrap().to_owned());
    }
    a.create(
        "/v1/admin/theaters",
        json!({"name": "Elsewhere", "city": "Goa"}),
    )
    .await;
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/theaters?city=delhi&limit=2&cursor={c}"),
            None => "/v1/admin/theaters?city=delhi&limit=2".to_owned(),
        };
        let (status, page) = a.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        for t in page["items"].as_array().unwrap() {
            assert_eq!(t["city"], "Delhi");
            seen.push(t["id"].as_str().unwrap().to_owned());
        }
        if cursor.is_none() {
            a.create(
                "/v1/admin/theaters",
                json!({"name": "Late", "city": "Delhi"}),
            )
            .await;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    for o in &originals {
        assert!(unique.contains(o), "{o} skipped");
    }
    assert_eq!(
        seen.len(),
        6,
        "the theater added meanwhile comes last: {seen:?}"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_show_releases_holds_refunds_payments_in_full_and_stops_sales() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let show = sys.show(2, 4).await;
    let (_, token) = sys.customer(1).await;
    let (_, paid) = sys
        .submit(
            &token,
            "paid",
            json!({"show_id": show, "seats": ["A1", "A2"], "payment_method": "pm_card_ok"}),
        )
        .await;
    let (_, held) = sys
        .submit(&token, "held", json!({"show_id": show, "seats": ["B1"]}))
        .await;
    let paid_id = paid["booking_id"].as_str().unwrap().to_owned();
    let held_id = held["booking_id"].as_str().unwrap().to_owned();
    sys.eventually(
        Duration::from_secs(30),
        "the paid booking is confirmed",
        || async { sys.booking(&token, &paid_id).await.1["status"] == "confirmed" },
    )
    .await;
    sys.eventually(
        Duration::from_secs(30),
        "the other booking is held",
        || async { sys.booking(&token, &held_id).await.1["status"] == "held" },
    )
    .await;

    let path = format!("/v1/admin/shows/{show}/cancel");
    let (_, customer) = sys.customer(2).await;
    assert_eq!(
        sys.call(Method::POST, &path, Some(&customer), None).await.0,
        403
    );
    let unknown = format!("/v1/admin/shows/{}/cancel", uuid::Uuid::now_v7());
    assert_eq!(a.call(Method::POST, &unknown, None).await.0, 404);
    let (status, res) = a.call(Method::POST, &path, None).await;
    assert_eq!(status, 202, "{res}");
    assert_eq!(res["status"], "cancelled");

    sys.eventually(
        Duration::from_secs(30),
        "the paid booking is refunded",
        || async { sys.booking(&token, &paid_id).await.1["status"] == "refunded" },
    )
    .await;
    let (_, released) = sys.booking(&token, &held_id).await;
    assert_eq!(released["status"], "failed", "{released}");
    assert_eq!(
        released["reason_detail"]["detail"], "show_cancelled",
        "{released}"
    );
    // The saga sends `RefundCompleted` before it marks its row: `refunded` can come first.
    let full_refund = (Some("succeeded".to_owned()), Some(50_000_i64));
    sys.eventually(Duration::from_secs(10), "a full refund", || async {
        let refund: (Option<String>, Option<i64>) = sqlx::query_as(
            "select refund_status, refund_amount from payments where booking_id = $1",
        )
        .bind(paid_id.parse::<uuid::Uuid>().unwrap())
        .fetch_one(&sys.pool)
        .await
        .unwrap();
        refund == full_refund
    })
    .await;
    let live: i64 = sqlx::query_scalar(
        "select count(*) from booking_seats where show_id = $1 and released_at is null",
    )
    .bind(show.0)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(live, 0);

    // Cancelling again changes nothing; nobody can book it any more.
    assert_eq!(a.call(Method::POST, &path, None).await.0, 202);
    tokio::time::sleep(Duration::from_millis(1100)).await; // ingress's show cache (1 s in tests)
    let (status, res) = sys
        .submit(&token, "after", json!({"show_id": show, "seats": ["A3"]}))
        .await;
    assert_eq!(status, 409, "{res}");
    assert_eq!(res["code"], "show_not_on_sale");
    let report = ops::reconcile::reconcile(&sys.pool).await.unwrap();
    assert!(report.ok, "{:?}", report.problems);
    sys.shutdown().await;
}

#[tokio::test]
async fn reconciliation_finds_a_cancellation_that_never_reached_the_sequencer() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let show = sys.show(1, 4).await;
    let (_, token) = sys.customer(1).await;
    let (_, held) = sys
        .submit(&token, "held", json!({"show_id": show, "seats": ["A1"]}))
        .await;
    let held_id = held["booking_id"].as_str().unwrap().to_owned();
    sys.wait_decided(&[held_id.parse().unwrap()], Duration::from_secs(30))
        .await;
    // The row says cancelled but no command was sent (a publish that failed).
    sqlx::query("update shows set status = 'cancelled' where id = $1")
        .bind(show.0)
        .execute(&sys.pool)
        .await
        .unwrap();
    let report = ops::reconcile::reconcile(&sys.pool).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == "live_booking_of_cancelled_show"),
        "{:?}",
        report.problems
    );
    // The remedy the problem names: cancel again.
    let (status, _) = a
        .call(
            Method::POST,
            &format!("/v1/admin/shows/{show}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    sys.eventually(
        Duration::from_secs(30),
        "reconciliation is clean",
        || async { ops::reconcile::reconcile(&sys.pool).await.unwrap().ok },
    )
    .await;
    sys.shutdown().await;
}
