//! The catalog end to end: search, filters, pagination, validation, and the live
//! seat map written by the sequencer runner to Redis.

use platform::seatmap::{self, SeatMap};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};
use time::OffsetDateTime;

/// Noon (UTC) `days` days from today: a start time whose calendar day is known.
fn noon_in(days: i64) -> OffsetDateTime {
    (OffsetDateTime::now_utc().date() + time::Duration::days(days))
        .midnight()
        .assume_utc()
        + time::Duration::hours(12)
}

fn day_of(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Titles of a movie list answer, in order.
fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|m| m["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn movie_titles(sys: &TestSystem, query: &str) -> Vec<String> {
    let (status, page) = sys.get(&format!("/v1/movies?{query}")).await;
    assert_eq!(status, 200, "{query}: {page}");
    titles(&page)
}

/// A movie with one show in Pune tomorrow.
async fn showing(sys: &TestSystem, title: &str, genres: &[&str], cast: &[&str]) -> uuid::Uuid {
    let m = sys.movie(title, genres, cast).await;
    sys.screening(m, "Pune", noon_in(1)).await;
    m
}

#[tokio::test]
async fn search_tolerates_typos_finds_cast_members_and_ranks_the_exact_title_first() {
    let sys = spawn_system(SystemOptions::default()).await;
    showing(
        &sys,
        "Avengers: Endgame",
        &["action"],
        &["Robert Downey Jr.", "Chris Evans"],
    )
    .await;
    showing(&sys, "Avengers", &["action"], &["Scarlett Johansson"]).await;
    showing(&sys, "The Notebook", &["romance"], &["Ryan Gosling"]).await;
    // Matches the text but has no show: not listed.
    sys.movie("Avengers: Age of Ultron", &["action"], &[]).await;

    let found = movie_titles(&sys, "q=avngers").await;
    assert!(found.contains(&"Avengers: Endgame".to_owned()), "{found:?}");
    assert!(!found.contains(&"The Notebook".to_owned()), "{found:?}");

    let found = movie_titles(&sys, "q=downey").await;
    assert_eq!(found, vec!["Avengers: Endgame"]);
    let found = movie_titles(&sys, "q=Chris%20Evans").await;
    assert_eq!(found, vec!["Avengers: Endgame"]);

    let found = movie_titles(&sys, "q=Avengers").await;
    assert_eq!(
        found,
        vec!["Avengers", "Avengers: Endgame"],
        "exact title first"
    );
    // Prefixes match while typing.
    let found = movie_titles(&sys, "q=noteb").await;
    assert_eq!(found, vec!["The Notebook"]);
    sys.shutdown().await;
}

#[tokio::test]
async fn city_date_and_genre_filters_each_exclude_what_they_should() {
    let sys = spawn_system(SystemOptions::default()).await;
    let action = sys.movie("Action Pune Tomorrow", &["action"], &[]).await;
    sys.screening(action, "Pune", noon_in(1)).await;
    let comedy = sys.movie("Comedy Mumbai Later", &["comedy"], &[]).await;
    sys.screening(comedy, "Mumbai", noon_in(2)).await;
    // Neither a started show nor a show not on sale makes a movie browsable.
    let past = sys.movie("Already Started", &["action"], &[]).await;
    sys.screening(
        past,
        "Pune",
        OffsetDateTime::now_utc() - time::Duration::minutes(10),
    )
    .await;
    let scheduled = sys.movie("Not On Sale Yet", &["action"], &[]).await;
    let show = sys.screening(scheduled, "Pune", noon_in(1)).await;
    sqlx::query("update shows set status = 'scheduled' where id = $1")
        .bind(show.0)
        .execute(&sys.pool)
        .await
        .unwrap();

    let all = ["Action Pune Tomorrow", "Comedy Mumbai Later"];
    assert_eq!(movie_titles(&sys, "").await, all);
    assert_eq!(
        movie_titles(&sys, "city=pune").await,
        ["Action Pune Tomorrow"]
    );
    assert_eq!(
        movie_titles(&sys, "city=Mumbai").await,
        ["Comedy Mumbai Later"]
    );
    assert!(movie_titles(&sys, "city=Delhi").await.is_empty());
    assert_eq!(
        movie_titles(&sys, "genre=comedy").await,
        ["Comedy Mumbai Later"]
    );
    let tomorrow = day_of(noon_in(1));
    assert_eq!(
        movie_titles(&sys, &format!("date={tomorrow}")).await,
        ["Action Pune Tomorrow"]
    );
    assert!(
        movie_titles(&sys, &format!("date={tomorrow}&city=Mumbai"))
            .await
            .is_empty()
    );

    // The same filters apply to a movie's shows.
    let (status, shows) = sys
        .get(&format!(
            "/v1/movies/{comedy}/shows?city=mumbai&date={}",
            day_of(noon_in(2))
        ))
        .await;
    assert_eq!(status, 200, "{shows}");
    assert_eq!(shows["items"].as_array().unwrap().len(), 1, "{shows}");
    assert_eq!(shows["items"][0]["theater"]["city"], "Mumbai");
    assert_eq!(shows["items"][0]["prices"][0]["amount"], 25_000);
    let (_, none) = sys
        .get(&format!("/v1/movies/{comedy}/shows?city=Pune"))
        .await;
    assert_eq!(none["items"], json!([]), "{none}");
    sys.shutdown().await;
}

/// Every item of a list, page by page with `limit`, calling `between` after the
/// first page.
async fn walk<F, Fut>(sys: &TestSystem, path: &str, key: &str, mut between: F) -> Vec<String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=3&cursor={c}"),
            None => format!("{path}{sep}limit=3"),
        };
        let (status, page) = sys.get(&url).await;
        assert_eq!(status, 200, "{url}: {page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item[key].as_str().unwrap().to_owned());
        }
        if cursor.is_none() {
            between().await;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
}

fn assert_no_duplicates_and_all_of(seen: &[String], originals: &[String]) {
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates in {seen:?}");
    for o in originals {
        assert!(unique.contains(o), "{o} skipped: {seen:?}");
    }
}

#[tokio::test]
async fn pages_stay_stable_while_rows_are_added_between_fetches() {
    let sys = spawn_system(SystemOptions::default()).await;
    let mut originals = Vec::new();
    for t in [
        "Bravo", "Delta", "Foxtrot", "Hotel", "Juliet", "Lima", "November",
    ] {
        showing(&sys, t, &["drama"], &[]).await;
        originals.push(t.to_owned());
    }
    // New titles sort before, between and after the first page's.
    let seen = walk(&sys, "/v1/movies", "title", || async {
        for t in ["Alpha", "Charlie", "Echo", "Zulu"] {
            showing(&sys, t, &["drama"], &[]).await;
        }
    })
    .await;
    assert_no_duplicates_and_all_of(&seen, &originals);
    assert!(
        seen.contains(&"Zulu".to_owned()),
        "added after the cursor: {seen:?}"
    );

    // Search pages (ordered by rank) too.
    let seen = walk(&sys, "/v1/movies?q=a", "title", || async {}).await;
    assert_no_duplicates_and_all_of(&seen, &[]);

    // A movie's shows, by start time.
    let movie = sys.movie("Many Shows", &["drama"], &[]).await;
    let mut shows = Vec::new();
    for h in 0..7 {
        let s = sys
            .screening(movie, "Pune", noon_in(1) + time::Duration::hours(h))
            .await;
        shows.push(s.to_string());
    }
    let seen = walk(&sys, &format!("/v1/movies/{movie}/shows"), "id", || async {
        for h in [-1, 3, 30] {
            let at = noon_in(1) + time::Duration::minutes(h * 60 + 30);
            sys.screening(movie, "Pune", at).await;
        }
    })
    .await;
    assert_no_duplicates_and_all_of(&seen, &shows);
    sys.shutdown().await;
}

#[tokio::test]
async fn unknown_or_malformed_ids_are_404_and_bad_parameters_are_refused() {
    let sys = spawn_system(SystemOptions::default()).await;
    let movie = showing(&sys, "Known", &["drama"], &[]).await;
    let nobody = uuid::Uuid::now_v7();
    for path in [
        format!("/v1/movies/{nobody}"),
        format!("/v1/movies/{nobody}/shows"),
        format!("/v1/shows/{nobody}"),
        format!("/v1/shows/{nobody}/seats"),
        "/v1/movies/not-a-uuid".to_owned(),
        "/v1/shows/123/seats".to_owned(),
    ] {
        let (status, body) = sys.get(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let long_q = "a".repeat(101);
    for (query, want) in [
        ("date=2026-13-01".to_owned(), 422),
        ("date=tomorrow".to_owned(), 422),
        (format!("q={long_q}"), 422),
        ("q=a%00b".to_owned(), 422),
        (format!("city={}", "c".repeat(101)), 422),
        (format!("genre={}", "g".repeat(41)), 422),
        ("limit=0".to_owned(), 422),
        ("limit=101".to_owned(), 422),
        ("limit=abc".to_owned(), 422),
        ("cursor=garbage!".to_owned(), 400),
        ("cursor=WzEsMl0".to_owned(), 400),
    ] {
        let (status, body) = sys.get(&format!("/v1/movies?{query}")).await;
        assert_eq!(status, want, "{query}: {body}");
        assert_eq!(body["status"], want, "problem+json body: {body}");
    }
    // Odd search text is searched, never an error.
    for q in [
        "%C2%BDab",
        "%E6%9D%B1%E4%BA%AC",
        "a'b",
        "a:*",
        "!%7C%26()",
        "%5C",
        "%25",
        "%F0%9F%98%80",
    ] {
        let (status, body) = sys.get(&format!("/v1/movies?q={q}")).await;
        assert_eq!(status, 200, "q={q}: {body}");
    }
    let nul_title_cursor = "WyJhXHUwMDAwYiIsIjAxOTNhMDAwLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMSJd";
    let (status, _) = sys
        .get(&format!("/v1/movies?cursor={nul_title_cursor}"))
        .await;
    assert_eq!(status, 400);
    let (status, _) = sys
        .get(&format!("/v1/movies/{movie}/shows?date=2026-02-30"))
        .await;
    assert_eq!(status, 422);
    // A title cursor is not a search cursor.
    let (_, page) = sys.get("/v1/movies?limit=1").await;
    assert!(page["next_cursor"].is_null(), "one movie, one page: {page}");
    let (status, _) = sys
        .get("/v1/movies?q=known&cursor=WyJrbm93biIsIjAxOTNhMDAwLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMSJd")
        .await;
    assert_eq!(status, 400);
    let (status, m) = sys.get(&format!("/v1/movies/{movie}")).await;
    assert_eq!((status, m["title"].as_str()), (200, Some("Known")));
    sys.shutdown().await;
}

/// Seat statuses of a seat map answer by seat id, and its version.
fn statuses(map: &Value) -> (i64, HashMap<String, String>) {
    let mut out = HashMap::new();
    for row in map["rows"].as_array().unwrap() {
        for seat in row["seats"].as_array().unwrap() {
            out.insert(
                seat["id"].as_str().unwrap().to_owned(),
                seat["status"].as_str().unwrap().to_owned(),
            );
        }
    }
    (map["version"].as_i64().unwrap(), out)
}

async fn seat_map(sys: &TestSystem, show: contracts::ShowId) -> (i64, HashMap<String, String>) {
    let res = sys
        .http
        .get(sys.url(&format!("/v1/shows/{show}/seats")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    statuses(&res.json().await.unwrap())
}

/// Waits until the seat map shows `seats` as `status`; returns the map.
async fn wait_seats(
    sys: &TestSystem,
    show: contracts::ShowId,
    seats: &[&str],
    status: &str,
) -> (i64, HashMap<String, String>) {
    let mut last = None;
    for _ in 0..200 {
        let map = seat_map(sys, show).await;
        if seats.iter().all(|s| map.1[*s] == status) {
            return map;
        }
        last = Some(map);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("seats {seats:?} never became {status}: {last:?}");
}

#[tokio::test]
async fn the_seat_map_follows_a_booking_from_held_to_sold_and_is_rebuilt_when_redis_loses_it() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(3, 4).await;
    sqlx::query("update screens set layout = jsonb_set(layout, '{rows,2,seats,3,blocked}', 'true') where id = (select screen_id from shows where id = $1)")
        .bind(show.0)
        .execute(&sys.pool)
        .await
        .unwrap();
    let (v0, initial) = seat_map(&sys, show).await;
    assert_eq!(v0, 0);
    assert_eq!(initial.len(), 12);
    assert_eq!(initial["C4"], "blocked");
    assert!(
        initial.iter().all(|(id, s)| id == "C4" || s == "available"),
        "{initial:?}"
    );
    let (status, whole) = sys.get(&format!("/v1/shows/{show}/seats")).await;
    assert_eq!(status, 200);
    assert_eq!(whole["currency"], "INR");
    assert_eq!(whole["rows"][0]["seats"][0]["price"], 25_000);
    assert_eq!(whole["rows"][0]["seats"][0]["type"], "regular");

    let (_, token) = sys.customer(1).await;
    let (status, accepted) = sys
        .submit(
            &token,
            "k1",
            json!({"show_id": show.to_string(), "seats": ["A1", "A2"]}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    sys.wait_decided(&[id.parse().unwrap()], Duration::from_secs(10))
        .await;
    let (v1, held) = wait_seats(&sys, show, &["A1", "A2"], "held").await;
    assert!(v1 > v0, "version {v1} after {v0}");
    assert_eq!(held["A3"], "available");

    let (status, _) = sys
        .post(
            &token,
            &format!("/v1/bookings/{id}/payment"),
            Some(json!({"payment_method": "pm_card_ok"})),
        )
        .await;
    assert_eq!(status, 202);
    let (v2, sold) = wait_seats(&sys, show, &["A1", "A2"], "sold").await;
    assert!(v2 > v1, "version {v2} after {v1}");

    // Redis loses the map: the next read rebuilds the same one from PostgreSQL,
    // and stores it again.
    let mut redis = sys.redis().await;
    let key = platform::cache::Keys::new(sys.settings.redis.key_prefix.clone()).seatmap(show);
    seatmap::forget(&mut redis, std::slice::from_ref(&key))
        .await
        .unwrap();
    assert_eq!(seat_map(&sys, show).await, (v2, sold));
    let stored = seatmap::load(&mut redis, &key).await.unwrap().unwrap();
    assert_eq!(stored.version, v2);
    assert_eq!(stored.sold, vec!["A1", "A2"]);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_seat_map_write_that_fails_while_redis_is_away_is_retried_when_it_returns() {
    let url = platform::Settings::load_for(platform::settings::AppEnv::Development)
        .unwrap()
        .redis
        .url;
    let target = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = tests::proxy::TcpProxy::start(target).await.unwrap();
    let sys = spawn_system(SystemOptions {
        workers_redis_port: Some(proxy.port),
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(2, 4).await;
    let (v0, _) = seat_map(&sys, show).await;

    proxy.cut();
    let (_, token) = sys.customer(1).await;
    let (status, accepted) = sys
        .submit(
            &token,
            "k",
            json!({"show_id": show.to_string(), "seats": ["B2"]}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().parse().unwrap();
    // The commit and ack go ahead without Redis.
    sys.wait_decided(&[id], Duration::from_secs(10)).await;
    let (v, stale) = seat_map(&sys, show).await;
    assert_eq!(
        (v, stale["B2"].as_str()),
        (v0, "available"),
        "the runner could not write"
    );

    proxy.restore();
    let (v1, _) = wait_seats(&sys, show, &["B2"], "held").await;
    assert!(v1 > v0);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_runner_that_dies_between_commit_and_seat_map_write_leaves_no_stale_map() {
    let mut sys = spawn_system(SystemOptions {
        workers: 0,
        ..SystemOptions::default()
    })
    .await;
    let faults = tests::Faults {
        crash_after_commit: 1,
        ..Default::default()
    };
    let w = sys.start_worker(None, faults).await;
    let show = sys.show(2, 4).await;
    let (v0, _) = seat_map(&sys, show).await;
    let (_, token) = sys.customer(1).await;
    let (status, _) = sys
        .submit(
            &token,
            "k",
            json!({"show_id": show.to_string(), "seats": ["A3"]}),
        )
        .await;
    assert_eq!(status, 202);
    // The first commit's runner "dies" before acking or writing the map; the
    // redelivery is absorbed by the inbox (no new events, so nothing to write), and
    // the partition's next session refreshes the recently changed shows.
    let (v1, _) = wait_seats(&sys, show, &["A3"], "held").await;
    assert!(v1 > v0);
    assert_eq!(
        w.faults_left().await.crash_after_commit,
        0,
        "the crash happened"
    );
    sys.workers.push(w);
    sys.shutdown().await;
}

#[tokio::test]
async fn an_older_seat_map_never_replaces_a_newer_one() {
    let sys = spawn_system(SystemOptions::default()).await;
    let mut redis = sys.redis().await;
    let keys = platform::cache::Keys::new(sys.settings.redis.key_prefix.clone());
    let (a, b) = (
        keys.seatmap(contracts::ShowId::new_v7()),
        keys.seatmap(contracts::ShowId::new_v7()),
    );
    let map = |version: i64, sold: &[&str]| SeatMap {
        version,
        held: vec![],
        sold: sold.iter().map(|s| (*s).to_owned()).collect(),
        zones: vec![],
    };
    let (v5, v3, v6) = (map(5, &["A1", "A2"]), map(3, &[]), map(6, &["A1"]));
    let stored = seatmap::store_if_newer(&mut redis, &[(a.clone(), &v5)], 60)
        .await
        .unwrap();
    assert_eq!(stored, vec![true]);
    // In one call: the stale map for `a` is refused, the first map for `b` stored.
    let stored = seatmap::store_if_newer(&mut redis, &[(a.clone(), &v3), (b.clone(), &v3)], 60)
        .await
        .unwrap();
    assert_eq!(stored, vec![false, true]);
    assert_eq!(
        seatmap::load(&mut redis, &a).await.unwrap(),
        Some(v5.clone())
    );
    // An equal version changes nothing either; a newer one wins.
    let stored = seatmap::store_if_newer(&mut redis, &[(a.clone(), &map(5, &[]))], 60)
        .await
        .unwrap();
    assert_eq!(stored, vec![false]);
    seatmap::store_if_newer(&mut redis, &[(a.clone(), &v6)], 60)
        .await
        .unwrap();
    assert_eq!(seatmap::load(&mut redis, &a).await.unwrap(), Some(v6));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&a)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((1..=60).contains(&ttl), "the map expires: ttl {ttl}");
    seatmap::forget(&mut redis, &[a, b]).await.unwrap();
    sys.shutdown().await;
}
