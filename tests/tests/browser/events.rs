//! Events and local times in the web app: the home page's kind filter lists a
//! concert, its `/events/{id}` deep link shows its performers and a half-past-
//! midnight show on the theater's clock with the zone, and the seat page says the
//! same time.

use crate::access::assert_accessible;
use crate::driver::Chromedriver;
use tests::{SystemOptions, spawn_system};
use time::{OffsetDateTime, Time, UtcOffset};

#[tokio::test]
async fn a_concert_is_listed_under_its_kind_and_its_page_says_the_local_time_with_the_zone() {
    let sys = spawn_system(SystemOptions::default()).await;
    let concert = sys.movie("Arijit Live", &["live"], &["Arijit Singh"]).await;
    sqlx::query("update movies set kind = 'concert' where id = $1")
        .bind(concert)
        .execute(&sys.pool)
        .await
        .unwrap();
    let movie = sys.movie("Sunshine", &["drama"], &[]).await;
    let ist = UtcOffset::from_hms(5, 30, 0).unwrap();
    let day = OffsetDateTime::now_utc().to_offset(ist).date() + time::Duration::days(2);
    let starts = day
        .with_time(Time::from_hms(0, 30, 0).unwrap())
        .assume_offset(ist);
    let show = sys.screening(concert, "Pune", starts).await;
    sys.screening(movie, "Pune", starts).await;

    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 1000).await;
    b.goto("/?city=Pune&kind=concert").await;
    let listed = b.text_contains("#results", "Arijit Live").await;
    assert!(!listed.contains("Sunshine"), "only concerts: {listed}");
    assert_accessible(&b, "home: concerts").await;
    b.click(&format!("#results a[href='/events/{concert}']"))
        .await;
    b.text_contains("main", "Artists: Arijit Singh").await;
    let times = b.text_contains(".showtimes", "00:30").await;
    assert!(times.contains("IST"), "the zone beside the time: {times}");
    assert_accessible(&b, "event page").await;
    b.click(&format!("a[href='/shows/{show}']")).await;
    let head = b.text_contains(".show-head", "00:30").await;
    assert!(head.contains("IST"), "{head}");
    b.close().await;
    sys.shutdown().await;
}
