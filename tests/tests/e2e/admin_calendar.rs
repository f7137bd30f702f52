//! What the admin's schedule page reads: a screen's shows within a week (`from`,
//! `to`) with their end, and movies and events found by part of their title.

use crate::admin::{admin, at};
use reqwest::Method;
use serde_json::json;
use tests::{SystemOptions, spawn_system};

#[tokio::test]
async fn a_screens_shows_are_listed_within_bounds_with_their_end() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    let (screen, movie) = a.venue().await;
    // Three shows of the 120-minute movie, a day apart.
    let starts: Vec<String> = (1..=3).map(|d| at(24 * d, 0)).collect();
    for s in &starts {
        let (status, res) = a.show(&screen, &movie, s).await;
        assert_eq!(status, 201, "{res}");
    }
    let list =
        |from: &str, to: &str| format!("/v1/admin/shows?screen_id={screen}&from={from}&to={to}");
    // [second, third) holds exactly the second.
    let (status, page) = a
        .call(Method::GET, &list(&starts[1], &starts[2]), None)
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["starts_at"], json!(starts[1]));
    let ends = time::OffsetDateTime::parse(
        items[0]["ends_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let begins =
        time::OffsetDateTime::parse(&starts[1], &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert_eq!(ends - begins, time::Duration::minutes(120));
    assert!(
        items[0]["ends_at_local"]
            .as_str()
            .unwrap()
            .ends_with("+05:30")
    );

    // A bound that is not a time is a 422 that names it.
    let (status, problem) = a
        .call(Method::GET, &list("next-week", &starts[2]), None)
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("from"),
        "{problem}"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn movies_and_events_are_found_by_part_of_their_title_taken_literally() {
    let sys = spawn_system(SystemOptions::default()).await;
    let a = admin(&sys).await;
    for title in ["Interstellar", "Stellar Nights Live", "100% Comedy"] {
        a.create(
            "/v1/admin/movies",
            json!({"title": title, "duration_min": 100}),
        )
        .await;
    }
    // Sorted: the list is in id order.
    let titles = |page: serde_json::Value| -> Vec<String> {
        let mut t: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["title"].as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t
    };
    let (_, page) = a
        .call(Method::GET, "/v1/admin/movies?q=STELLAR", None)
        .await;
    assert_eq!(titles(page), ["Interstellar", "Stellar Nights Live"]);
    // `%` is a character of the title, not a wildcard.
    let (_, page) = a.call(Method::GET, "/v1/admin/movies?q=0%25", None).await;
    assert_eq!(titles(page), ["100% Comedy"]);
    let (_, page) = a.call(Method::GET, "/v1/admin/movies?q=%25", None).await;
    assert_eq!(titles(page), ["100% Comedy"]);
    sys.shutdown().await;
}
