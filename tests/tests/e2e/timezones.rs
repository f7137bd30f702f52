//! Time zones end to end (API.md, Round 2, "Times"): a theater's IANA zone, show
//! times answered in UTC and on the theater's clock, `date=` as the theater's local
//! day, `location=` as an alias of `city=`, case-insensitive cities, and emails in
//! local time with the zone, the theater's name and address, the screen and seats.

use auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};
use time::{Date, OffsetDateTime, Time, UtcOffset};

const IST: UtcOffset = match UtcOffset::from_hms(5, 30, 0) {
    Ok(o) => o,
    Err(_) => panic!("a valid offset"),
};

/// 00:30 in Kolkata `days` days from today's date there: the previous evening
/// (19:00) in UTC.
fn half_past_midnight_ist(days: i64) -> (Date, OffsetDateTime) {
    let day = OffsetDateTime::now_utc().to_offset(IST).date() + time::Duration::days(days);
    let t = day
        .with_time(Time::from_hms(0, 30, 0).unwrap())
        .assume_offset(IST)
        .to_offset(UtcOffset::UTC);
    (day, t)
}

fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

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

#[tokio::test]
async fn a_half_past_midnight_show_in_kolkata_is_listed_on_its_local_day_and_not_the_utc_day_before()
 {
    let sys = spawn_system(SystemOptions::default()).await;
    let movie = sys.movie("Midnight Express", &["drama"], &[]).await;
    let (day, starts) = half_past_midnight_ist(2);
    let show = sys.screening(movie, "Mumbai", starts).await;
    let utc_day = starts.date();
    assert_ne!(utc_day, day, "the UTC day is the day before");

    let local = list(&sys, &format!("/v1/movies?city=Mumbai&date={}", ymd(day))).await;
    assert_eq!(titles(&local), ["Midnight Express"]);
    let before = list(
        &sys,
        &format!("/v1/movies?city=Mumbai&date={}", ymd(utc_day)),
    )
    .await;
    assert!(titles(&before).is_empty(), "{before}");
    // Without a city too (the plan then starts from the shows).
    assert_eq!(
        titles(&list(&sys, &format!("/v1/movies?date={}", ymd(day))).await),
        ["Midnight Express"]
    );
    assert!(titles(&list(&sys, &format!("/v1/movies?date={}", ymd(utc_day))).await).is_empty());
    assert_eq!(
        titles(&list(&sys, &format!("/v1/events?date={}", ymd(day))).await),
        ["Midnight Express"]
    );

    // The movie's shows on that day, with both times and the zone.
    let shows = list(
        &sys,
        &format!("/v1/movies/{movie}/shows?city=mumbai&date={}", ymd(day)),
    )
    .await;
    let item = &shows["items"][0];
    assert_eq!(item["id"], show.to_string(), "{shows}");
    let expected_local = format!("{}T00:30:00+05:30", ymd(day));
    assert_eq!(item["starts_at_local"], expected_local.as_str());
    assert_eq!(item["theater"]["time_zone"], "Asia/Kolkata");
    let utc = OffsetDateTime::parse(
        item["starts_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(utc, starts);
    assert!(item["starts_at"].as_str().unwrap().ends_with('Z'));
    let none = list(
        &sys,
        &format!("/v1/movies/{movie}/shows?date={}", ymd(utc_day)),
    )
    .await;
    assert!(none["items"].as_array().unwrap().is_empty(), "{none}");

    // The show's details answer the same.
    let (status, detail) = sys.get(&format!("/v1/shows/{show}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["starts_at_local"], expected_local.as_str());
    assert_eq!(detail["theater"]["time_zone"], "Asia/Kolkata");
    assert!(
        detail["ends_at_local"]
            .as_str()
            .unwrap()
            .ends_with("+05:30")
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn a_theater_elsewhere_answers_its_own_offset_and_its_own_local_day() {
    let sys = spawn_system(SystemOptions::default()).await;
    let movie = sys.movie("London Calling", &["drama"], &[]).await;
    // 23:30 in London is already the next day in Kolkata.
    let day = OffsetDateTime::now_utc().date() + time::Duration::days(3);
    let starts = day
        .with_time(Time::from_hms(23, 30, 0).unwrap())
        .assume_utc();
    let show = sys.screening(movie, "London", starts).await;
    sqlx::query(
        "update theaters set time_zone = 'Europe/London'
          where id = (select sc.theater_id from shows s join screens sc on sc.id = s.screen_id
                       where s.id = $1)",
    )
    .bind(show.0)
    .execute(&sys.pool)
    .await
    .unwrap();
    let page = list(&sys, &format!("/v1/movies/{movie}/shows?location=LONDON")).await;
    let local = page["items"][0]["starts_at_local"].as_str().unwrap();
    // Winter or summer, the wall clock reads the London time of that instant.
    assert!(
        local.ends_with("+00:00") || local.ends_with("+01:00"),
        "{local}"
    );
    assert_eq!(page["items"][0]["theater"]["time_zone"], "Europe/London");
    let london_day = ymd(OffsetDateTime::parse(
        local,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .date());
    assert_eq!(
        titles(
            &list(
                &sys,
                &format!("/v1/movies?location=london&date={london_day}")
            )
            .await
        ),
        ["London Calling"]
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn location_is_an_alias_of_city_and_cities_compare_case_insensitively() {
    let sys = spawn_system(SystemOptions::default()).await;
    let movie = sys.movie("Bombay Talkies", &["drama"], &[]).await;
    sys.screening(
        movie,
        "Mumbai",
        OffsetDateTime::now_utc() + time::Duration::days(1),
    )
    .await;
    for q in [
        "city=Mumbai",
        "city=mUMBAI",
        "location=mumbai",
        "location=MUMBAI",
        "city=Mumbai&location=mumbai",
    ] {
        assert_eq!(
            titles(&list(&sys, &format!("/v1/movies?{q}")).await),
            ["Bombay Talkies"],
            "{q}"
        );
        assert_eq!(
            titles(&list(&sys, &format!("/v1/events?{q}")).await),
            ["Bombay Talkies"],
            "{q}"
        );
        let shows = list(&sys, &format!("/v1/movies/{movie}/shows?{q}")).await;
        assert_eq!(shows["items"].as_array().unwrap().len(), 1, "{q}: {shows}");
    }
    assert!(titles(&list(&sys, "/v1/movies?location=Delhi").await).is_empty());
    let (status, problem) = sys.get("/v1/movies?city=Mumbai&location=Delhi").await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "validation_failed");
    sys.shutdown().await;
}

#[tokio::test]
async fn admins_give_theaters_a_known_time_zone_and_an_unknown_one_is_a_422() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, admin) = sys.user_with_role(Role::Admin).await;
    let call = |method: Method, path: String, body: Value| {
        let admin = admin.clone();
        let sys = &sys;
        async move { sys.call(method, &path, Some(&admin), Some(body)).await }
    };
    let (status, t) = call(
        Method::POST,
        "/v1/admin/theaters".into(),
        json!({"name": "Default Zone", "city": "Pune"}),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["time_zone"], "Asia/Kolkata", "the default");
    let (status, t) = call(
        Method::POST,
        "/v1/admin/theaters".into(),
        json!({"name": "Odeon Leicester Square", "city": "London", "time_zone": "europe/london"}),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(
        t["time_zone"], "Europe/London",
        "stored in its canonical spelling"
    );
    let id = t["id"].as_str().unwrap().to_owned();
    for bad in [
        "Mars/Olympus",
        "IST",
        "+05:30",
        "Asia/Kolkata; drop table theaters",
        "",
    ] {
        let (status, p) = call(
            Method::POST,
            "/v1/admin/theaters".into(),
            json!({"name": "Nowhere", "city": "Pune", "time_zone": bad}),
        )
        .await;
        assert_eq!(status, 422, "{bad:?}: {p}");
        assert_eq!(p["code"], "validation_failed");
        let (status, p) = call(
            Method::PATCH,
            format!("/v1/admin/theaters/{id}"),
            json!({"time_zone": bad}),
        )
        .await;
        assert_eq!(status, 422, "{bad:?}: {p}");
    }
    let (status, t) = call(
        Method::PATCH,
        format!("/v1/admin/theaters/{id}"),
        json!({"time_zone": "Asia/Tokyo"}),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["time_zone"], "Asia/Tokyo");
    let n: i64 = sqlx::query_scalar("select count(*) from theaters where name = 'Nowhere'")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    sys.shutdown().await;
}

#[tokio::test]
async fn the_confirmation_email_says_the_local_time_with_its_zone_the_theater_its_address_the_screen_and_seats()
 {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, token) = sys.customer(1).await;
    let movie = sys.movie("Night Owls", &["drama"], &[]).await;
    let (day, starts) = half_past_midnight_ist(2);
    let show = sys.screening(movie, "Mumbai", starts).await;
    sqlx::query(
        "update theaters set name = 'Regal Colaba', address = 'Shahid Bhagat Singh Road, Colaba'
          where id = (select sc.theater_id from shows s join screens sc on sc.id = s.screen_id
                       where s.id = $1)",
    )
    .bind(show.0)
    .execute(&sys.pool)
    .await
    .unwrap();
    let body =
        json!({"show_id": show.to_string(), "seats": ["A1", "A2"], "payment_method": "pm_card_ok"});
    let (status, accepted) = sys.submit(&token, "tz-mail", body).await;
    assert_eq!(status, 202, "{accepted}");
    let mails = sys.wait_emails(1, Duration::from_secs(30)).await;
    let mail = mailparse::parse_mail(&mails[0].raw).unwrap();
    let text = mail
        .subparts
        .iter()
        .find(|p| p.ctype.mimetype == "text/plain")
        .map(|p| p.get_body().unwrap())
        .unwrap_or_else(|| panic!("no text part"));
    // e.g. "Thu 3 Dec 2026, 00:30 IST (Asia/Kolkata)".
    let day_words = format!(
        "{} {} {}",
        day.day(),
        &format!("{}", day.month())[..3],
        day.year()
    );
    assert!(text.contains(&day_words), "{day_words} in {text}");
    assert!(text.contains("00:30 IST (Asia/Kolkata)"), "{text}");
    assert!(!text.contains("19:00"), "no UTC time: {text}");
    assert!(text.contains("Regal Colaba"), "{text}");
    assert!(text.contains("Shahid Bhagat Singh Road, Colaba"), "{text}");
    assert!(text.contains("Screen 1"), "{text}");
    assert!(text.contains("A1, A2"), "{text}");
    sys.shutdown().await;
}
