//! Accounts: registration, login, refresh rotation and reuse detection, logout, the
//! profile and the caller's bookings (API.md, "Auth and profile").

use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use tests::{SystemOptions, TestSystem, spawn_system};

const PASSWORD: &str = "correct horse battery";

async fn register(sys: &TestSystem, email: &str) -> (u16, Value) {
    sys.call(
        Method::POST,
        "/v1/auth/register",
        None,
        Some(json!({"email": email, "password": PASSWORD, "name": "Asha Rao"})),
    )
    .await
}

async fn refresh(sys: &TestSystem, token: &str) -> (u16, Value) {
    sys.call(
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

fn tokens(body: &Value) -> (String, String) {
    (
        body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned(),
        body["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_owned(),
    )
}

#[tokio::test]
async fn register_then_login_and_the_tokens_work() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (status, body) = register(&sys, "  Asha@Example.com ").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["email"], "asha@example.com");
    assert_eq!(body["user"]["role"], "customer");
    assert_eq!(body["token_type"], "Bearer");
    let (access, _) = tokens(&body);
    let (status, me) = sys.call(Method::GET, "/v1/me", Some(&access), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], body["user"]["id"]);
    assert_eq!(
        me["preferences"],
        json!({"city": null, "genres": [], "notify": ["email"]})
    );

    // The same email in another case is the same account.
    let (status, dup) = register(&sys, "ASHA@example.COM").await;
    assert_eq!(status, 409, "{dup}");
    assert_eq!(dup["code"], "conflict");

    let login = |email: &'static str, password: &'static str| {
        let sys = &sys;
        async move {
            sys.call(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await
        }
    };
    let (status, ok) = login("asha@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["expires_in"], 900);
    let (access, _) = tokens(&ok);
    assert_eq!(
        sys.call(Method::GET, "/v1/me", Some(&access), None).await.0,
        200
    );
    for (email, password) in [
        ("asha@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
    ] {
        let (status, body) = login(email, password).await;
        assert_eq!(status, 401, "{email}: {body}");
        assert_eq!(body["code"], "invalid_credentials");
    }
    for bad in [None, Some("garbage")] {
        let (status, body) = sys.call(Method::GET, "/v1/me", bad, None).await;
        assert_eq!(status, 401, "{body}");
    }
    sys.shutdown().await;
}

#[tokio::test]
async fn registration_input_is_validated() {
    let sys = spawn_system(SystemOptions::default()).await;
    for (body, what) in [
        (
            json!({"email": "x", "password": PASSWORD, "name": "A"}),
            "email",
        ),
        (
            json!({"email": "a@b.co", "password": "short", "name": "A"}),
            "password",
        ),
        (
            json!({"email": "a@b.co", "password": PASSWORD, "name": "  "}),
            "name",
        ),
        (
            json!({"email": "a@b.co", "password": PASSWORD, "name": "A", "phone": "12"}),
            "phone",
        ),
        (
            json!({"email": "a@b.co", "password": PASSWORD, "name": "A", "role": "admin"}),
            "role",
        ),
        (json!({"email": "a@b.co", "name": "A"}), "missing password"),
    ] {
        let (status, res) = sys
            .call(Method::POST, "/v1/auth/register", None, Some(body))
            .await;
        assert_eq!(status, 422, "{what}: {res}");
        assert_eq!(res["code"], "validation_failed", "{what}");
    }
    let res = sys
        .http
        .post(sys.url("/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let n: i64 = sqlx::query_scalar("select count(*) from users where email = 'a@b.co'")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "a refused registration stored nothing");
    sys.shutdown().await;
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_its_family() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, body) = register(&sys, "rotate@example.com").await;
    let (_, a) = tokens(&body);

    let (status, next) = refresh(&sys, &a).await;
    assert_eq!(status, 200, "{next}");
    let (access_b, b) = tokens(&next);
    assert_ne!(a, b);
    assert_eq!(
        sys.call(Method::GET, "/v1/me", Some(&access_b), None)
            .await
            .0,
        200
    );

    // A again: reuse. It fails, and so does B, which was issued from it.
    let (status, res) = refresh(&sys, &a).await;
    assert_eq!(status, 401, "{res}");
    assert_eq!(res["code"], "invalid_refresh_token");
    let (status, _) = refresh(&sys, &b).await;
    assert_eq!(status, 401, "the family was revoked");

    // Unknown and oversized tokens are refused the same way.
    assert_eq!(refresh(&sys, "not-a-token").await.0, 401);
    assert_eq!(refresh(&sys, &"x".repeat(500)).await.0, 401);

    // A fresh login starts a new family that works.
    let (_, login) = sys
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": "rotate@example.com", "password": PASSWORD})),
        )
        .await;
    let (_, c) = tokens(&login);
    assert_eq!(refresh(&sys, &c).await.0, 200);
    sys.shutdown().await;
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_let_exactly_one_through() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, body) = register(&sys, "race@example.com").await;
    let (_, token) = tokens(&body);
    let results = futures::future::join_all((0..8).map(|_| refresh(&sys, &token))).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results.iter().all(|(s, _)| *s == 200 || *s == 401));
    sys.shutdown().await;
}

#[tokio::test]
async fn logout_ends_the_refresh_token() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, body) = register(&sys, "bye@example.com").await;
    let (_, token) = tokens(&body);
    let logout = || {
        sys.call(
            Method::POST,
            "/v1/auth/logout",
            None,
            Some(json!({"refresh_token": token})),
        )
    };
    assert_eq!(logout().await.0, 204);
    assert_eq!(logout().await.0, 204, "logging out twice is harmless");
    assert_eq!(refresh(&sys, &token).await.0, 401);
    sys.shutdown().await;
}

#[tokio::test]
async fn the_profile_can_be_changed_within_bounds() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, body) = register(&sys, "patch@example.com").await;
    let (access, _) = tokens(&body);
    let patch = |b: Value| sys.call(Method::PATCH, "/v1/me", Some(&access), Some(b));

    let (status, me) = patch(json!({
        "name": " Asha R. ",
        "phone": "+919812345678",
        "preferences": {"city": "Pune", "genres": ["drama", "thriller"]}
    }))
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["name"], "Asha R.");
    assert_eq!(me["phone"], "+919812345678");
    assert_eq!(me["preferences"]["city"], "Pune");

    // Absent fields stay; an explicit null clears the phone.
    let (status, me) = patch(json!({"phone": null})).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["phone"], Value::Null);
    assert_eq!(me["name"], "Asha R.");
    assert_eq!(me["preferences"]["genres"], json!(["drama", "thriller"]));

    for bad in [
        json!({"name": ""}),
        json!({"phone": "call me"}),
        json!({"preferences": {"genres": (0..21).map(|i| format!("g{i}")).collect::<Vec<_>>()}}),
        json!({"preferences": {"city": "x".repeat(101)}}),
        json!({"role": "admin"}),
        json!({"email": "new@example.com"}),
    ] {
        let (status, res) = patch(bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {res}");
    }
    let (_, me) = sys.call(Method::GET, "/v1/me", Some(&access), None).await;
    assert_eq!(me["role"], "customer");
    assert_eq!(me["email"], "patch@example.com");
    sys.shutdown().await;
}

/// Inserts a decided booking of `user` created `minutes_ago`.
async fn booking_row(
    sys: &TestSystem,
    user: uuid::Uuid,
    show: uuid::Uuid,
    minutes_ago: i64,
) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into bookings (id, user_id, show_id, status, seats, amount, currency, created_at, updated_at)
         values ($1, $2, $3, 'held', '{A1}', 25000, 'INR',
                 now() - make_interval(mins => $4::int), now() - make_interval(mins => $4::int))",
    )
    .bind(id)
    .bind(user)
    .bind(show)
    .bind(minutes_ago as i32)
    .execute(&sys.pool)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn my_bookings_are_newest_first_and_pages_stay_stable_while_rows_are_added() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(2, 5).await;
    let (me, token) = sys.customer(1).await;
    let (other, _) = sys.customer(2).await;
    let mut originals = vec![];
    for m in 0..7 {
        originals.push(booking_row(&sys, me.0, show.0, 100 + m).await);
    }
    let theirs = booking_row(&sys, other.0, show.0, 50).await;

    let mut seen: Vec<uuid::Uuid> = vec![];
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/me/bookings?limit=3&cursor={c}"),
            None => "/v1/me/bookings?limit=3".to_owned(),
        };
        let (status, page) = sys.call(Method::GET, &path, Some(&token), None).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["booking_id"].as_str().unwrap().parse().unwrap());
            assert_eq!(item["show"]["movie_title"], "Test Movie");
        }
        pages += 1;
        if pages == 1 {
            // Newer, in between and older bookings arrive while the client pages.
            booking_row(&sys, me.0, show.0, 1).await;
            booking_row(&sys, me.0, show.0, 102).await;
            booking_row(&sys, me.0, show.0, 500).await;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    for o in &originals {
        assert!(unique.contains(o), "{o} skipped: {seen:?}");
    }
    assert!(!unique.contains(&theirs), "another user's booking listed");
    // Newest first: the originals keep their order (created 100, 101, ... minutes ago).
    let order: Vec<_> = seen.iter().filter(|id| originals.contains(id)).collect();
    assert_eq!(order, originals.iter().collect::<Vec<_>>());

    let (status, res) = sys
        .call(
            Method::GET,
            "/v1/me/bookings?cursor=garbage",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 400, "{res}");
    let (status, _) = sys
        .call(Method::GET, "/v1/me/bookings?limit=0", Some(&token), None)
        .await;
    assert_eq!(status, 422);
    sys.shutdown().await;
}
