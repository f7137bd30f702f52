//! Theater scopes (API.md, Round 2, "Theater staff"): an admin scoped to theater A is
//! refused (`403`) on theater B's resources on every admin route, sees only A in
//! lists, cannot add theaters or edit the shared movie catalog; revoking the grant
//! takes effect within the scope cache's TTL; staff are not admins.

use crate::venues::{Venues, layout, prices, scoped, ticket, venues};
use auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

/// One request of the admin surface: method, path, body.
type Call = (Method, String, Option<Value>);

/// Every admin route, aimed at the resources of `v.b` (theater, screen, show).
/// [`every_admin_route_is_in_the_scope_table`] proves no route of the served
/// OpenAPI document is missing here.
fn routes_on(v: &Venues, b: &crate::venues::Venue) -> Vec<(&'static str, Call)> {
    let (t, sc, sh) = (&b.theater, &b.screen, &b.show);
    let show_body = json!({"movie_id": v.movie, "screen_id": sc, "starts_at": crate::venues::in_hours(72), "prices": prices()});
    // Five days ahead on the theater's calendar (Asia/Kolkata), clear of the show above.
    let day = (time::OffsetDateTime::now_utc() + time::Duration::days(5)).date();
    let recurring_body = json!({"movie_id": v.movie, "screen_id": sc, "times": ["10:00"], "from": day.to_string(), "to": day.to_string(), "prices": prices()});
    vec![
        (
            "/v1/admin/theaters/{theater_id}",
            (Method::GET, format!("/v1/admin/theaters/{t}"), None),
        ),
        (
            "/v1/admin/theaters/{theater_id}",
            (
                Method::PATCH,
                format!("/v1/admin/theaters/{t}"),
                Some(json!({"address": "x"})),
            ),
        ),
        (
            "/v1/admin/theaters/{theater_id}/screens",
            (Method::GET, format!("/v1/admin/theaters/{t}/screens"), None),
        ),
        (
            "/v1/admin/theaters/{theater_id}/screens",
            (
                Method::POST,
                format!("/v1/admin/theaters/{t}/screens"),
                Some(json!({"name": "Screen 9", "layout": layout()})),
            ),
        ),
        (
            "/v1/admin/screens/{screen_id}",
            (Method::GET, format!("/v1/admin/screens/{sc}"), None),
        ),
        (
            "/v1/admin/screens/{screen_id}/layout",
            (
                Method::PUT,
                format!("/v1/admin/screens/{sc}/layout"),
                Some(json!({"layout": layout()})),
            ),
        ),
        (
            "/v1/admin/shows",
            (Method::POST, "/v1/admin/shows".into(), Some(show_body)),
        ),
        (
            "/v1/admin/screens/{screen_id}/blocks",
            (
                Method::POST,
                format!("/v1/admin/screens/{sc}/blocks"),
                Some(json!({"seat_ids": ["A1"], "from": crate::venues::in_hours(240)})),
            ),
        ),
        (
            "/v1/admin/screens/{screen_id}/blocks",
            (Method::GET, format!("/v1/admin/screens/{sc}/blocks"), None),
        ),
        (
            "/v1/admin/shows/recurring",
            (
                Method::POST,
                "/v1/admin/shows/recurring".into(),
                Some(recurring_body),
            ),
        ),
        (
            "/v1/admin/shows/{show_id}",
            (Method::GET, format!("/v1/admin/shows/{sh}"), None),
        ),
        (
            "/v1/admin/shows/{show_id}",
            (
                Method::PATCH,
                format!("/v1/admin/shows/{sh}"),
                Some(json!({"prices": prices()})),
            ),
        ),
        (
            "/v1/admin/shows/{show_id}/sales",
            (Method::GET, format!("/v1/admin/shows/{sh}/sales"), None),
        ),
        (
            "/v1/admin/shows/{show_id}/checkins",
            (Method::GET, format!("/v1/admin/shows/{sh}/checkins"), None),
        ),
        (
            "/v1/scanner/shows/{show_id}/manifest",
            (
                Method::GET,
                format!("/v1/scanner/shows/{sh}/manifest"),
                None,
            ),
        ),
        (
            "/v1/admin/reports/sales",
            (
                Method::GET,
                format!("/v1/admin/reports/sales?from=2026-06-01&to=2027-05-31&theater_id={t}"),
                None,
            ),
        ),
        // Last: it cancels the show.
        (
            "/v1/admin/shows/{show_id}/cancel",
            (Method::POST, format!("/v1/admin/shows/{sh}/cancel"), None),
        ),
    ]
}

/// Routes of the admin surface that take no theater's resource: platform-only
/// writes, and lists filtered to the caller's scope (tested below).
const UNSCOPED_OR_FILTERED: &[&str] = &[
    "/v1/admin/theaters",
    "/v1/admin/movies",
    "/v1/admin/movies/{movie_id}",
    "/v1/admin/events",
    "/v1/admin/bookings",
];

async fn call(sys: &TestSystem, token: &str, (m, path, body): &Call) -> (u16, Value) {
    sys.call(m.clone(), path, Some(token), body.clone()).await
}

#[tokio::test]
async fn every_admin_route_is_in_the_scope_table() {
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let (_, doc) = sys.get("/v1/openapi.json").await;
    let v = venues(&sys).await;
    let covered: BTreeSet<&str> = routes_on(&v, &v.b)
        .iter()
        .map(|(p, _)| *p)
        .chain(UNSCOPED_OR_FILTERED.iter().copied())
        .collect();
    let admin: Vec<&String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.starts_with("/v1/admin/") || p.starts_with("/v1/scanner/"))
        .collect();
    assert!(admin.len() > 10, "{admin:?}");
    for p in admin {
        assert!(covered.contains(p.as_str()), "{p} has no scope test");
    }
    sys.shutdown().await;
}

#[tokio::test]
async fn a_theater_admin_is_refused_on_every_route_of_another_theater_and_served_on_its_own() {
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let v = venues(&sys).await;
    let (_, admin_a) = scoped(&sys, Role::Admin, &v.a.theater).await;
    for (route, c) in routes_on(&v, &v.b) {
        let (status, res) = call(&sys, &admin_a, &c).await;
        assert_eq!(status, 403, "{} {route} on theater B: {res}", c.0);
        assert_eq!(res["code"], "forbidden", "{route}");
    }
    // Nothing changed in B: its show is still on sale, its theater unchanged.
    let (status, show) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/shows/{}", v.b.show),
            Some(&v.platform),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(show["on_sale"], true, "{show}");
    // The same routes on A's resources are served (the 403 above is the scope).
    for (route, c) in routes_on(&v, &v.a) {
        let (status, res) = call(&sys, &admin_a, &c).await;
        assert!(
            (200..300).contains(&status),
            "{} {route} on theater A: {status} {res}",
            c.0
        );
    }
    sys.shutdown().await;
}

#[tokio::test]
async fn a_theater_admin_lists_only_its_theater_and_cannot_add_theaters_or_edit_movies() {
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let v = venues(&sys).await;
    let (_, admin_a) = scoped(&sys, Role::Admin, &v.a.theater).await;
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, theaters) = sys
        .call(Method::GET, "/v1/admin/theaters", Some(&admin_a), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&theaters), vec![v.a.theater.clone()]);
    let (_, all) = sys
        .call(Method::GET, "/v1/admin/theaters", Some(&v.platform), None)
        .await;
    assert_eq!(ids(&all).len(), 2);
    let (status, shows) = sys
        .call(Method::GET, "/v1/admin/shows", Some(&admin_a), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&shows), vec![v.a.show.clone()]);
    for c in [
        (
            Method::POST,
            "/v1/admin/theaters".to_owned(),
            Some(json!({"name": "Mine", "city": "Pune"})),
        ),
        (
            Method::POST,
            "/v1/admin/movies".to_owned(),
            Some(json!({"title": "T", "duration_min": 90})),
        ),
        (
            Method::PATCH,
            format!("/v1/admin/movies/{}", v.movie),
            Some(json!({"title": "Renamed"})),
        ),
        (
            Method::POST,
            "/v1/admin/events".to_owned(),
            Some(json!({"kind": "concert", "title": "T"})),
        ),
    ] {
        let (status, res) = call(&sys, &admin_a, &c).await;
        assert_eq!(status, 403, "{} {}: {res}", c.0, c.1);
    }
    // Reading the shared catalog is fine: a theater schedules shows of its movies.
    let (status, _) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/movies/{}", v.movie),
            Some(&admin_a),
            None,
        )
        .await;
    assert_eq!(status, 200);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_revoked_grant_stops_working_and_never_makes_a_platform_admin() {
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let v = venues(&sys).await;
    let (email, admin_a) = scoped(&sys, Role::Admin, &v.a.theater).await;
    let path = format!("/v1/admin/theaters/{}", v.a.theater);
    let (status, _) = sys.call(Method::GET, &path, Some(&admin_a), None).await;
    assert_eq!(status, 200);
    bookctl::users::revoke(&sys.pool, &email, v.a.theater.parse().unwrap())
        .await
        .unwrap();
    // Within the scope cache's TTL (5 s by default), on the same token.
    sys.eventually(
        Duration::from_secs(15),
        "the revocation to apply",
        || async { sys.call(Method::GET, &path, Some(&admin_a), None).await.0 == 403 },
    )
    .await;
    // With no theater left it manages nothing, B included; the lists are empty.
    let (status, _) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/theaters/{}", v.b.theater),
            Some(&admin_a),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (_, theaters) = sys
        .call(Method::GET, "/v1/admin/theaters", Some(&admin_a), None)
        .await;
    assert_eq!(theaters["items"], json!([]));
    assert!(bookctl::users::is_scoped(&sys.pool, &email).await.unwrap());
    sys.shutdown().await;
}

#[tokio::test]
async fn staff_are_not_admins_and_operators_cannot_be_scoped() {
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let v = venues(&sys).await;
    let (_, staff_a) = scoped(&sys, Role::Staff, &v.a.theater).await;
    for path in [
        format!("/v1/admin/theaters/{}", v.a.theater),
        format!("/v1/admin/shows/{}/sales", v.a.show),
    ] {
        let (status, _) = sys.call(Method::GET, &path, Some(&staff_a), None).await;
        assert_eq!(status, 403, "{path}");
    }
    let (op, _) = sys.user_with_role(Role::Operator).await;
    let email: String = sqlx::query_scalar("select email from users where id = $1")
        .bind(op.0)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    let err = bookctl::users::grant(&sys.pool, &email, Role::Admin, v.a.theater.parse().unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("operator"), "{err}");
    sys.shutdown().await;
}

#[tokio::test]
async fn a_theater_admin_reads_only_its_theaters_bookings_and_tickets() {
    let sys = spawn_system(SystemOptions::default()).await;
    let v = venues(&sys).await;
    let (booking, _, token) = ticket(&sys, &v.b.show, &["C4"]).await;
    let (_, admin_a) = scoped(&sys, Role::Admin, &v.a.theater).await;
    let (_, admin_b) = scoped(&sys, Role::Admin, &v.b.theater).await;
    let reads = [
        format!("/v1/bookings/{booking}"),
        format!("/v1/bookings/{booking}/ticket"),
    ];
    let verify = format!("/v1/tickets/verify?token={token}");
    // Another theater's admin: the booking does not exist for it, the ticket is not
    // its to verify.
    for path in &reads {
        let (status, res) = sys.call(Method::GET, path, Some(&admin_a), None).await;
        assert_eq!(status, 404, "{path}: {res}");
    }
    let (status, res) = sys.call(Method::GET, &verify, Some(&admin_a), None).await;
    assert_eq!(status, 403, "{res}");
    // The show's theater admin and a platform admin read both.
    for who in [&admin_b, &v.platform] {
        for path in &reads {
            let (status, res) = sys.call(Method::GET, path, Some(who), None).await;
            assert_eq!(status, 200, "{path}: {res}");
        }
        let (status, res) = sys.call(Method::GET, &verify, Some(who), None).await;
        assert_eq!(status, 200, "{res}");
        assert_eq!(res["valid"], true, "{res}");
    }
    sys.shutdown().await;
}
