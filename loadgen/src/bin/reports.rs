//! `reports`: times the sales reports (`GET /v1/admin/reports/sales`) over the large
//! seed with its sales, against a running ingress.
//!
//! It seeds what is missing first (both steps are idempotent): `--fortnights`
//! two-week schedules of the large catalog one after the other from tomorrow (1: the
//! catalog of `bookctl seed --catalog large`, about 47,000 shows; 26: a year of them),
//! then `seed::sales` for every show (about 24 bookings each, in every final state,
//! with their payments). It checks that the rollup (`show_sales`) equals the figures
//! computed straight from the bookings and payments, which is also how long a report
//! took before the rollup, and then sends each report `--rounds` times, one at a
//! time, as a platform admin: platform-wide by day, show, event and theater, and one
//! theater's (the one with the most shows) by day and by show, each over a period of
//! a year (366 days from tomorrow, the longest a report takes).

use anyhow::Context;
use auth::{Role, TokenKeys};
use clap::Parser;
use hdrhistogram::Histogram;
use seed::catalog::{Options, Scale};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "reports",
    about = "Seed the large catalog with its sales and time the sales reports over a year.",
    version
)]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// Two-week schedules of the large catalog to seed, one after the other (26: a
    /// year of shows).
    #[arg(long, default_value_t = 1)]
    fortnights: u32,
    /// Seed of the generated catalog (`bookctl seed --seed`).
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Requests per report (after two untimed ones).
    #[arg(long, default_value_t = 30)]
    rounds: usize,
    /// Skip the check that the rollup equals the bookings (it reads every booking).
    #[arg(long)]
    no_check: bool,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static bounds are valid")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    drop(rustls::crypto::ring::default_provider().install_default());
    let settings = platform::Settings::load().context("loading settings")?;
    let pool = platform::db::pool(&settings.database)?;

    // The catalog and its sales.
    let started = Instant::now();
    let first = Options::starting_tomorrow(cli.seed, settings.catalog.cleaning_buffer_min);
    let mut shows = 0;
    for k in 0..cli.fortnights {
        let opts = Options {
            first_day: first.first_day + time::Duration::days(14 * i64::from(k)),
            ..first
        };
        let catalog = seed::catalog::generate(&Scale::LARGE, &opts);
        shows += seed::catalog::insert(&pool, &catalog)
            .await
            .context("inserting the catalog")?
            .shows;
        shows +=
            seed::catalog::insert(&pool, &seed::catalog::generate_events(&Scale::LARGE, &opts))
                .await
                .context("inserting the events")?
                .shows;
    }
    let from = first.first_day.midnight().assume_utc() - time::Duration::days(1);
    let to = from + time::Duration::days(366);
    let sales = seed::sales::insert(&pool, from, to)
        .await
        .context("inserting the sales")?;
    println!(
        "seeded {shows} shows, {} bookings, {} payments in {:.1} s (what was there already is kept)",
        sales.bookings,
        sales.payments,
        started.elapsed().as_secs_f64()
    );
    sqlx::raw_sql("vacuum analyze").execute(&pool).await?;
    let (shows, bookings, payments): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from shows where starts_at >= $1 and starts_at < $2),
                (select count(*) from bookings), (select count(*) from payments)",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&pool)
    .await?;
    println!(
        "in the database: {shows} shows in the period, {bookings} bookings, {payments} payments"
    );

    if !cli.no_check {
        let t = Instant::now();
        let drift = seed::sales::drift(&pool).await?;
        println!(
            "check: every show's figures computed from the bookings and payments (the report \
             before the rollup) in {:.1} s: {}",
            t.elapsed().as_secs_f64(),
            if drift.is_empty() {
                "the rollup equals them".to_owned()
            } else {
                format!(
                    "{} shows differ, e.g. {:?}",
                    drift.len(),
                    &drift[..drift.len().min(3)]
                )
            }
        );
        anyhow::ensure!(drift.is_empty(), "the rollup drifted from the bookings");
        let misplaced = seed::sales::misplaced(&pool).await?;
        anyhow::ensure!(
            misplaced.is_empty(),
            "{} shows' rollup rows do not say their start, theater, event or capacity",
            misplaced.len()
        );
    }

    // The reports.
    let theater: Uuid = sqlx::query_scalar(
        "select sc.theater_id from shows s join screens sc on sc.id = s.screen_id
          where s.starts_at >= $1 and s.starts_at < $2
          group by 1 order by count(*) desc, 1 limit 1",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&pool)
    .await
    .context("no shows: nothing to report on")?;
    let admin = loadgen::setup::users(
        &pool,
        &TokenKeys::new(&settings.auth.jwt_secret, 24 * 3600),
        &format!("reports-{}", Uuid::new_v4().simple()),
        1,
        Role::Admin,
    )
    .await?
    .remove(0);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let day = |t: OffsetDateTime| t.date().to_string();
    let period = format!(
        "from={}&to={}",
        day(from),
        day(to - time::Duration::days(1))
    );
    let reports = [
        ("platform, by day", format!("group_by=day&{period}")),
        ("platform, by show", format!("group_by=show&{period}")),
        ("platform, by event", format!("group_by=event&{period}")),
        ("platform, by theater", format!("group_by=theater&{period}")),
        (
            "one theater, by day",
            format!("group_by=day&theater_id={theater}&{period}"),
        ),
        (
            "one theater, by show",
            format!("group_by=show&theater_id={theater}&{period}"),
        ),
    ];
    println!(
        "\n{} requests per report, one at a time, period {period}\n",
        cli.rounds
    );
    println!(
        "{:<22} {:>7} {:>10} {:>8} {:>8} {:>8}",
        "report", "rows", "bytes", "p50 ms", "p99 ms", "max ms"
    );
    let base = cli.base_url.trim_end_matches('/');
    for (name, query) in reports {
        let url = format!("{base}/v1/admin/reports/sales?{query}");
        let mut h = histogram();
        let (mut rows, mut bytes) = (0, 0);
        for i in 0..cli.rounds + 2 {
            let sent = Instant::now();
            let res = http.get(&url).bearer_auth(&admin).send().await?;
            let status = res.status();
            let body = res.bytes().await?;
            let took = sent.elapsed();
            anyhow::ensure!(
                status.is_success(),
                "{name}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            if i < 2 {
                let v: serde_json::Value = serde_json::from_slice(&body)?;
                rows = v["items"].as_array().map_or(0, Vec::len);
                bytes = body.len();
                continue;
            }
            h.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{name:<22} {rows:>7} {bytes:>10} {:>8.1} {:>8.1} {:>8.1}",
            ms(0.5),
            ms(0.99),
            h.max() as f64 / 1000.0
        );
    }
    Ok(())
}
