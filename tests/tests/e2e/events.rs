//! Events of every kind end to end (API.md, Round 2, "Catalog of events"):
//! `/v1/events` lists them by kind, searches them with typos and lists their shows;
//! `/v1/movies` stays the movies view; admins create a concert and a show of it.

use auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use tests::{SystemOptions, TestSystem, spawn_system};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const KINDS: [&str; 6] = ["movie", "concert", "sports", "play", "comedy", "other"];

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|m| m["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn list(sys: &TestSystem, path: &str) -> Value {
    let (status, page) = sys.get(path).await;
    assert_eq!(status, 200, "{path}: {page}");
    page
}

/// An event of `kind` with one show in Pune tomorrow; returns (event, show).
async fn event(
    sys: &TestSystem,
    kind: &str,
    title: &str,
    performers: &[&str],
) -> (uuid::Uuid, contracts::ShowId) {
    let id = sys.movie(title, &["live"], performers).await;
    sqlx::query("update movies set kind = $2 where id = $1")
        .bind(id)
        .bind(kind)
        .execute(&sys.pool)
        .await
        .unwrap();
    let show = sys
        .screening(
            id,
            "Pune",
            OffsetDateTime::now_utc() + time::Duration::days(1),
        )
        .await;
    (id, show)
}

#[tokio::test]
async fn events_of_each_kind_are_listed_by_kind_found_with_a_typo_and_their_shows_listed() {
    let sys = spawn_system(SystemOptions::default()).await;
    let titles_by_kind = [
        ("movie", "Interstellar", &["Matthew McConaughey"][..]),
        (
            "concert",
            "Coldplay Music of the Spheres",
            &["Coldplay"][..],
        ),
        (
            "sports",
            "Mumbai Indians vs Chennai Super Kings",
            &["Mumbai Indians", "Chennai Super Kings"][..],
        ),
        ("play", "Hamlet at the Prithvi", &["Naseeruddin Shah"][..]),
        ("comedy", "Zakir Khan Live", &["Zakir Khan"][..]),
        ("other", "Sula Wine Festival", &[][..]),
    ];
    let mut ids = vec![];
    for (kind, title, performers) in titles_by_kind {
        ids.push(event(&sys, kind, title, performers).await);
    }

    let all = list(&sys, "/v1/events?city=pune").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 6, "{all}");
    for (i, kind) in KINDS.iter().enumerate() {
        let page = list(&sys, &format!("/v1/events?kind={kind}&city=Pune")).await;
        assert_eq!(titles(&page), [titles_by_kind[i].1], "{kind}");
        assert_eq!(page["items"][0]["kind"], *kind);
        assert_eq!(page["items"][0]["id"], ids[i].0.to_string());
    }
    let (status, p) = sys.get("/v1/events?kind=opera").await;
    assert_eq!(status, 422, "{p}");

    // Typo-tolerant search over titles and performers, within a kind or across.
    assert_eq!(
        titles(&list(&sys, "/v1/events?q=colplay").await),
        ["Coldplay Music of the Spheres"]
    );
    assert_eq!(
        titles(&list(&sys, "/v1/events?q=chenai&kind=sports").await),
        ["Mumbai Indians vs Chennai Super Kings"]
    );
    assert!(titles(&list(&sys, "/v1/events?q=chenai&kind=concert").await).is_empty());
    assert_eq!(
        titles(&list(&sys, "/v1/events?q=zakir%20khan").await),
        ["Zakir Khan Live"]
    );

    // Paged by cursor: two pages of three.
    let first = list(&sys, "/v1/events?limit=3").await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = list(&sys, &format!("/v1/events?limit=3&cursor={cursor}")).await;
    let mut seen = titles(&first);
    seen.extend(titles(&second));
    assert_eq!(seen.len(), 6);
    assert!(second["next_cursor"].is_null());

    // An event's details and its shows.
    let (concert, concert_show) = ids[1];
    let (status, e) = sys.get(&format!("/v1/events/{concert}")).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["kind"], "concert");
    assert_eq!(e["performers"], json!(["Coldplay"]));
    let shows = list(&sys, &format!("/v1/events/{concert}/shows?location=PUNE")).await;
    assert_eq!(shows["items"][0]["id"], concert_show.to_string(), "{shows}");
    assert_eq!(shows["items"][0]["theater"]["time_zone"], "Asia/Kolkata");
    let (status, show) = sys.get(&format!("/v1/shows/{concert_show}")).await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["event"]["kind"], "concert");
    let (status, _) = sys
        .get(&format!("/v1/events/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, 404);
    // A movie is an event too (one id space).
    let (status, m) = sys.get(&format!("/v1/events/{}", ids[0].0)).await;
    assert_eq!((status, m["kind"].as_str()), (200, Some("movie")));
    sys.shutdown().await;
}

#[tokio::test]
async fn the_movies_view_is_unchanged_for_movies_and_never_lists_a_concert() {
    let sys = spawn_system(SystemOptions::default()).await;
    let movie = sys.movie("Arrival", &["sci-fi"], &["Amy Adams"]).await;
    sys.screening(
        movie,
        "Pune",
        OffsetDateTime::now_utc() + time::Duration::days(1),
    )
    .await;
    let (concert, _) = event(&sys, "concert", "Arrival: The Concert", &["Amy Adams"]).await;

    let page = list(&sys, "/v1/movies?city=Pune").await;
    assert_eq!(titles(&page), ["Arrival"]);
    let item = page["items"][0].as_object().unwrap();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "duration_min",
            "genres",
            "id",
            "language",
            "rating",
            "title"
        ],
        "the movie list's shape"
    );
    assert_eq!(
        titles(&list(&sys, "/v1/movies?q=arival").await),
        ["Arrival"]
    );
    assert_eq!(
        titles(&list(&sys, "/v1/movies?q=amy%20adams").await),
        ["Arrival"]
    );
    let (status, m) = sys.get(&format!("/v1/movies/{movie}")).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["cast"], json!(["Amy Adams"]));
    let (status, _) = sys.get(&format!("/v1/movies/{concert}")).await;
    assert_eq!(status, 404, "a concert is not a movie");
    let (status, _) = sys.get(&format!("/v1/movies/{concert}/shows")).await;
    assert_eq!(status, 404);
    assert_eq!(
        titles(&list(&sys, "/v1/events?q=arival").await).len(),
        2,
        "both are events"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn an_admin_creates_a_concert_and_a_show_of_it_and_movies_keep_their_route() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, admin) = sys.user_with_role(Role::Admin).await;
    let call = |method: Method, path: &str, body: Option<Value>| {
        let admin = admin.clone();
        let path = path.to_owned();
        let sys = &sys;
        async move { sys.call(method, &path, Some(&admin), body).await }
    };
    let (status, theater) = call(
        Method::POST,
        "/v1/admin/theaters",
        Some(json!({"name": "NSCI Dome", "city": "Mumbai", "address": "Worli"})),
    )
    .await;
    assert_eq!(status, 201, "{theater}");
    let layout = json!({"rows": [{"row": "A", "seats": [{"number": 1, "type": "regular"}, {"number": 2, "type": "regular"}]}]});
    let (status, screen) = call(
        Method::POST,
        &format!(
            "/v1/admin/theaters/{}/screens",
            theater["id"].as_str().unwrap()
        ),
        Some(json!({"name": "Arena", "layout": layout})),
    )
    .await;
    assert_eq!(status, 201, "{screen}");

    let (status, concert) = call(
        Method::POST,
        "/v1/admin/events",
        Some(json!({"kind": "concert", "title": "Arijit Singh Live", "performers": ["Arijit Singh"], "genres": ["bollywood"], "duration_min": 180})),
    )
    .await;
    assert_eq!(status, 201, "{concert}");
    assert_eq!(concert["kind"], "concert");
    assert_eq!(concert["performers"], json!(["Arijit Singh"]));
    assert!(concert["rating"].is_null(), "rating is optional");
    // A match without a duration gets its kind's default; teams are its performers.
    let (status, m) = call(
        Method::POST,
        "/v1/admin/events",
        Some(json!({"kind": "sports", "title": "India vs Australia", "teams": ["India", "Australia"]})),
    )
    .await;
    assert_eq!(status, 201, "{m}");
    assert_eq!(m["performers"], json!(["India", "Australia"]));
    assert!(m["duration_min"].as_i64().unwrap() > 0);
    for bad in [
        json!({"kind": "opera", "title": "Aida"}),
        json!({"title": "No kind"}),
        json!({"kind": "concert", "title": " "}),
        json!({"kind": "concert", "title": "Too long", "duration_min": 100000}),
    ] {
        let (status, p) = call(Method::POST, "/v1/admin/events", Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad}: {p}");
    }

    let starts = (OffsetDateTime::now_utc() + time::Duration::days(5))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    let prices = json!([{"seat_type": "regular", "amount": 150000, "currency": "INR"}]);
    let (status, show) = call(
        Method::POST,
        "/v1/admin/shows",
        Some(json!({"event_id": concert["id"], "screen_id": screen["id"], "starts_at": starts, "prices": prices})),
    )
    .await;
    assert_eq!(status, 201, "{show}");
    assert_eq!(show["event"]["id"], concert["id"]);
    assert_eq!(show["event"]["kind"], "concert");
    assert!(
        show["starts_at_local"]
            .as_str()
            .unwrap()
            .ends_with("+05:30")
    );
    // The show ends after the concert's 180 minutes.
    let at = |k: &str| OffsetDateTime::parse(show[k].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(
        at("ends_at") - at("starts_at"),
        time::Duration::minutes(180)
    );
    let listed = list(
        &sys,
        &format!("/v1/events/{}/shows", concert["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(listed["items"][0]["id"], show["id"], "{listed}");
    let (status, admin_list) = call(
        Method::GET,
        &format!(
            "/v1/admin/shows?event_id={}",
            concert["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{admin_list}");
    assert_eq!(admin_list["items"][0]["event_id"], concert["id"]);
    assert_eq!(admin_list["items"][0]["time_zone"], "Asia/Kolkata");

    // movie_id and event_id name the same thing; two different ones, or none, are a 422.
    for body in [
        json!({"movie_id": concert["id"], "event_id": m["id"], "screen_id": screen["id"], "starts_at": starts, "prices": prices}),
        json!({"screen_id": screen["id"], "starts_at": starts, "prices": prices}),
    ] {
        let (status, p) = call(Method::POST, "/v1/admin/shows", Some(body)).await;
        assert_eq!(status, 422, "{p}");
    }

    // POST /v1/admin/movies keeps working (kind movie unless given).
    let (status, movie) = call(
        Method::POST,
        "/v1/admin/movies",
        Some(json!({"title": "A Film", "cast": ["An Actor"], "duration_min": 100})),
    )
    .await;
    assert_eq!(status, 201, "{movie}");
    assert_eq!(movie["kind"], "movie");
    assert_eq!(movie["cast"], json!(["An Actor"]));
    let (status, play) = call(
        Method::POST,
        "/v1/admin/movies",
        Some(json!({"kind": "play", "title": "A Play", "duration_min": 100})),
    )
    .await;
    assert_eq!(status, 201, "{play}");
    assert_eq!(play["kind"], "play");
    let (status, _) = sys
        .get(&format!("/v1/movies/{}", play["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 404, "a play is not in the movies view");
    sys.shutdown().await;
}
