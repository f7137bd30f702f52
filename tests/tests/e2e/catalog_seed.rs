//! The generated catalog (`bookctl seed --catalog`) in a real database: its counts,
//! valid layouts, a price for every seat type of every show, schedules without
//! overlaps, and seeding again adds nothing.

use contracts::{ScreenLayout, ShowId};
use seed::catalog::{Inserted, Options, Scale, generate, insert};
use sqlx::PgPool;
use tests::{SystemOptions, TestSystem, spawn_system};

async fn database_only() -> TestSystem {
    spawn_system(SystemOptions {
        workers: 0,
        ..Default::default()
    })
    .await
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Shows lacking a price for a seat type of their screen, plus prices of seat types
/// their screen does not have.
const MISPRICED: &str = "
    with screen_types as (
        select distinct sc.id as screen_id, seat->>'type' as seat_type
          from screens sc,
               jsonb_array_elements(sc.layout->'rows') as r(row),
               jsonb_array_elements(r.row->'seats') as seat
    )
    select (select count(*)
              from shows s
              join screen_types t on t.screen_id = s.screen_id
              left join show_prices p on p.show_id = s.id and p.seat_type = t.seat_type
             where p.show_id is null)
         + (select count(*)
              from show_prices p
              join shows s on s.id = p.show_id
              left join screen_types t on t.screen_id = s.screen_id and t.seat_type = p.seat_type
             where t.screen_id is null)";

/// Pairs of shows on one screen whose busy times overlap.
const OVERLAPS: &str = "
    select count(*) from shows a join shows b
        on a.screen_id = b.screen_id and a.id < b.id
       and tstzrange(a.starts_at, a.busy_until) && tstzrange(b.starts_at, b.busy_until)";

#[tokio::test]
async fn a_reduced_catalog_keeps_its_invariants_and_seeding_again_adds_nothing() {
    let sys = database_only().await;
    let scale = Scale {
        name: "test",
        cities: 2,
        theaters: 5,
        screens: 8,
        movies: 6,
        shows: 20,
        days: 2,
    };
    let buffer = sys.settings.catalog.cleaning_buffer_min;
    let catalog = generate(&scale, &Options::starting_tomorrow(7, buffer));
    let inserted = insert(&sys.pool, &catalog).await.expect("seed the catalog");
    let prices: usize = catalog.shows.iter().map(|s| s.prices.len()).sum();
    assert_eq!(
        inserted,
        Inserted {
            theaters: 5,
            screens: 8,
            movies: 6,
            shows: 20,
            prices: prices as u64,
        }
    );
    let pool = &sys.pool;
    assert_eq!(
        count(pool, "select count(distinct city) from theaters").await,
        2
    );
    assert_eq!(count(pool, "select count(*) from shows").await, 20);
    assert_eq!(count(pool, MISPRICED).await, 0);
    assert_eq!(count(pool, OVERLAPS).await, 0);
    let buffer_sql = format!(
        "select count(*) from shows where busy_until <> ends_at + interval '{buffer} minutes'"
    );
    assert_eq!(count(pool, &buffer_sql).await, 0);

    let layouts: Vec<sqlx::types::Json<ScreenLayout>> =
        sqlx::query_scalar("select layout from screens")
            .fetch_all(pool)
            .await
            .unwrap();
    for l in &layouts {
        l.0.validate().expect("a stored layout validates");
    }
    // Booking reads a seeded show like any other.
    let show = platform::catalog::load_show(pool, ShowId(catalog.shows[0].id))
        .await
        .unwrap()
        .expect("the show loads");
    assert_eq!(show.status.as_str(), "on_sale");
    assert!(!show.prices.is_empty());

    let again = insert(&sys.pool, &catalog).await.expect("seed again");
    assert_eq!(again, Inserted::default());
    assert_eq!(count(pool, "select count(*) from shows").await, 20);
    assert_eq!(
        count(pool, "select count(*) from show_prices").await,
        prices as i64
    );
    sys.shutdown().await;
}

/// `bookctl --json seed --demo --catalog small`, its output parsed.
async fn seed_demo_and_small(sys: &TestSystem) -> serde_json::Value {
    let cli =
        bookctl::cli::parse_from(["bookctl", "--json", "seed", "--demo", "--catalog", "small"])
            .unwrap();
    let mut out = Vec::new();
    bookctl::cli::run(&sys.settings, cli, &mut out, None)
        .await
        .expect("bookctl seed");
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test]
async fn bookctl_seeds_the_demo_and_the_small_catalog_once() {
    let sys = database_only().await;
    let first = seed_demo_and_small(&sys).await;
    let small = Scale::SMALL;
    let seeded = first["catalog"]["inserted"]["shows"].as_i64().unwrap();
    assert!(seeded > 100 && seeded <= small.shows as i64, "{first}");
    assert_eq!(first["catalog"]["inserted"]["theaters"], small.theaters);
    assert!(first["show_id"].is_string(), "{first}");
    // Concerts, a match, a play and a comedy night, at venues of their own.
    let events = &first["catalog"]["events"];
    assert_eq!(events["movies"], 6, "{first}");
    assert_eq!(events["theaters"], 6, "{first}");
    let event_shows = events["shows"].as_i64().unwrap();
    assert!(event_shows >= 6, "{first}");
    let kinds = count(
        &sys.pool,
        "select count(distinct kind) from movies where kind <> 'movie'",
    )
    .await;
    assert_eq!(kinds, 4, "concert, sports, play, comedy");

    let second = seed_demo_and_small(&sys).await;
    assert_eq!(
        second["catalog"]["inserted"],
        serde_json::json!({"theaters": 0, "screens": 0, "movies": 0, "shows": 0, "prices": 0})
    );
    assert_eq!(second["catalog"]["events"]["shows"], 0);
    // The small catalog, its events, the demo show and the demo concert, whose
    // screen has the 500-place standing floor.
    let shows = count(&sys.pool, "select count(*) from shows").await;
    assert_eq!(shows, seeded + event_shows + 2);
    let concert: uuid::Uuid = first["concert_show_id"].as_str().unwrap().parse().unwrap();
    let floor: Option<i64> = sqlx::query_scalar(
        "select (sc.layout -> 'zones' -> 0 ->> 'capacity')::int8 from shows s
           join screens sc on sc.id = s.screen_id where s.id = $1",
    )
    .bind(concert)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(floor, Some(500));
    let famous = count(
        &sys.pool,
        "select count(*) from movies where title = 'Avengers: Endgame'",
    )
    .await;
    assert_eq!(famous, 1);
    sys.shutdown().await;
}
